/* radraft.reporting.frames._slice_kernel: one slice into its frames in one pass.
 *
 * render() windows a slice (a table lookup of the stored value giving up to four grey
 * levels, one per byte of a 32-bit word: "lanes"), resizes every lane with Pillow's 8-bit
 * two-pass resampling (horizontal then vertical, each rounded to 8 bits, 22-bit fixed
 * point weights: libImaging/Resample.c), and writes each output row straight into the
 * R, G and B bytes of every frame that shows the slice. numpy needed a separate pass and a
 * temporary for each of those steps; here every row is written once, with the GIL released
 * so the render threads run in parallel.
 *
 * An axis is described by one int32 array, built and cached by box.py:
 *   [n_in, n_out, kmax, two_tap, xmin[n_out], xlen[n_out], weights[n_out * kmax],
 *    first[n_out], second[n_out]]
 * two_tap = 1 when every output pixel is one input pixel (weight 1 << 22) or the mean of
 * two (weights 1 << 21 each): Pillow's sum is then exactly (a + b + 1) >> 1, computed on
 * all four lanes at once without carries between them. Everything is bounds-checked
 * before the GIL is released: a bad table is a ValueError, never a stray write.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define PRECISION_BITS (32 - 8 - 2)

typedef struct {
    int n_in, n_out, kmax, two_tap;
    const int32_t *xmin, *xlen, *weights, *first, *second;
} Axis;

static int
axis_from(const Py_buffer *view, const char *name, Axis *axis)
{
    const int32_t *t = (const int32_t *)view->buf;
    Py_ssize_t words = view->len / (Py_ssize_t)sizeof(int32_t);
    if (view->itemsize != 4 || words < 4) {
        PyErr_Format(PyExc_ValueError, "%s: not an int32 axis table", name);
        return -1;
    }
    axis->n_in = t[0];
    axis->n_out = t[1];
    axis->kmax = t[2];
    axis->two_tap = t[3];
    if (axis->n_in < 1 || axis->n_out < 1 || axis->kmax < 1
        || words != 4 + (Py_ssize_t)axis->n_out * (4 + axis->kmax)) {
        PyErr_Format(PyExc_ValueError, "%s: malformed axis table", name);
        return -1;
    }
    axis->xmin = t + 4;
    axis->xlen = axis->xmin + axis->n_out;
    axis->weights = axis->xlen + axis->n_out;
    axis->first = axis->weights + (Py_ssize_t)axis->n_out * axis->kmax;
    axis->second = axis->first + axis->n_out;
    for (int j = 0; j < axis->n_out; j++) {
        int bad = axis->xmin[j] < 0 || axis->xlen[j] < 1 || axis->xlen[j] > axis->kmax
                  || axis->xmin[j] + axis->xlen[j] > axis->n_in;
        if (axis->two_tap)
            bad = bad || axis->first[j] < 0 || axis->first[j] >= axis->n_in
                  || axis->second[j] < 0 || axis->second[j] >= axis->n_in;
        if (bad) {
            PyErr_Format(PyExc_ValueError, "%s: output %d reads outside %d inputs",
                         name, j, axis->n_in);
            return -1;
        }
    }
    return 0;
}

static inline uint32_t
mean2(uint32_t a, uint32_t b)
{
    /* (a + b + 1) >> 1 in each byte, no carry between bytes. */
    return (a | b) - (((a ^ b) & 0xFEFEFEFEu) >> 1);
}

static inline uint32_t
clip8(int32_t sum)
{
    if (sum >= (1 << PRECISION_BITS << 8))
        return 255;
    if (sum <= 0)
        return 0;
    return (uint32_t)(sum >> PRECISION_BITS);
}

static inline uint32_t
weighted(const uint32_t *in, Py_ssize_t step, const int32_t *k, int taps)
{
    /* Pillow's ImagingResample*_8bpc sum for one output pixel, in each of the four lanes. */
    int32_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0, s3 = s0;
    for (int x = 0; x < taps; x++) {
        uint32_t v = in[x * step];
        s0 += (int32_t)(v & 255) * k[x];
        s1 += (int32_t)((v >> 8) & 255) * k[x];
        s2 += (int32_t)((v >> 16) & 255) * k[x];
        s3 += (int32_t)(v >> 24) * k[x];
    }
    return clip8(s0) | clip8(s1) << 8 | clip8(s2) << 16 | clip8(s3) << 24;
}

/* Horizontal pass of one row: row[n_in] → out[n_out]. */
static void
horizontal(const Axis *h, const uint32_t *row, uint32_t *out)
{
    if (h->two_tap) {
        for (int j = 0; j < h->n_out; j++)
            out[j] = mean2(row[h->first[j]], row[h->second[j]]);
        return;
    }
    for (int j = 0; j < h->n_out; j++)
        out[j] = weighted(row + h->xmin[j], 1, h->weights + (Py_ssize_t)j * h->kmax,
                          h->xlen[j]);
}

/* Vertical pass for output row i: rows of `middle` (width words each) → out[width]. */
static void
vertical(const Axis *v, int i, const uint32_t *middle, int width, uint32_t *out)
{
    if (v->two_tap) {
        const uint32_t *a = middle + (Py_ssize_t)v->first[i] * width;
        const uint32_t *b = middle + (Py_ssize_t)v->second[i] * width;
        if (a == b) {
            memcpy(out, a, (size_t)width * sizeof(uint32_t));
            return;
        }
        for (int c = 0; c < width; c++)
            out[c] = mean2(a[c], b[c]);
        return;
    }
    const uint32_t *base = middle + (Py_ssize_t)v->xmin[i] * width;
    const int32_t *k = v->weights + (Py_ssize_t)i * v->kmax;
    for (int c = 0; c < width; c++)
        out[c] = weighted(base + c, width, k, v->xlen[i]);
}

/* One output row into a frame: byte lanes[c] of every word → channel c of its pixel. */
static void
write_rgb_plain(const uint32_t *row, int width, const int32_t *lanes, uint8_t *dst)
{
    int s0 = 8 * lanes[0], s1 = 8 * lanes[1], s2 = 8 * lanes[2];
    int j = 0;
    /* Four-byte stores, each overwritten by the next pixel but the last. */
    for (; j + 1 < width; j++) {
        uint32_t w = row[j];
        uint32_t rgb = ((w >> s0) & 255) | ((w >> s1) & 255) << 8 | ((w >> s2) & 255) << 16;
        memcpy(dst + 3 * j, &rgb, 4);
    }
    uint32_t w = row[j];
    dst[3 * j] = (uint8_t)(w >> s0);
    dst[3 * j + 1] = (uint8_t)(w >> s1);
    dst[3 * j + 2] = (uint8_t)(w >> s2);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <tmmintrin.h>
/* The same with SSSE3's byte shuffle: 4 words → 12 bytes a step (every x86-64 CPU since
 * 2006 has it; checked at import, the plain loop otherwise). The 16-byte store's last 4
 * bytes land on pixels j+4 and j+5, written later, so it stops 6 pixels from the end. */
__attribute__((target("ssse3"))) static void
write_rgb_ssse3(const uint32_t *row, int width, const int32_t *lanes, uint8_t *dst)
{
    uint8_t order[16];
    for (int k = 0; k < 12; k++)
        order[k] = (uint8_t)(4 * (k / 3) + lanes[k % 3]);
    for (int k = 12; k < 16; k++)
        order[k] = 0x80;
    __m128i shuffle = _mm_loadu_si128((const __m128i *)order);
    int j = 0;
    for (; j + 6 <= width; j += 4) {
        __m128i words = _mm_loadu_si128((const __m128i *)(row + j));
        _mm_storeu_si128((__m128i *)(dst + 3 * j), _mm_shuffle_epi8(words, shuffle));
    }
    write_rgb_plain(row + j, width - j, lanes, dst + 3 * j);
}
#endif

static void (*write_rgb)(const uint32_t *, int, const int32_t *, uint8_t *) = write_rgb_plain;

typedef struct {
    const void *src;
    int bits;  /* 8 or 16: stored values through `lut`; 32: lane words already */
    const uint32_t *lut;
    Axis h, v;
    uint8_t *out;
    Py_ssize_t frame_bytes;
    int frame_size, top, left, offset;
    const int32_t *targets;  /* [first frame, lane R, lane G, lane B] per target */
    Py_ssize_t ntargets;
    uint32_t *scratch;  /* cols + rows * width + width words */
} Job;

static void
run(const Job *job)
{
    const Axis *h = &job->h, *v = &job->v;
    int rows = v->n_in, cols = h->n_in, height = v->n_out, width = h->n_out;
    uint32_t *line = job->scratch;
    uint32_t *middle = line + cols;
    uint32_t *row_out = middle + (Py_ssize_t)rows * width;

    for (int r = 0; r < rows; r++) {
        const uint32_t *words;
        if (job->bits == 32) {
            words = (const uint32_t *)job->src + (Py_ssize_t)r * cols;
        } else if (job->bits == 16) {
            const uint16_t *s = (const uint16_t *)job->src + (Py_ssize_t)r * cols;
            for (int c = 0; c < cols; c++)
                line[c] = job->lut[s[c]];
            words = line;
        } else {
            const uint8_t *s = (const uint8_t *)job->src + (Py_ssize_t)r * cols;
            for (int c = 0; c < cols; c++)
                line[c] = job->lut[s[c]];
            words = line;
        }
        horizontal(h, words, middle + (Py_ssize_t)r * width);
    }
    Py_ssize_t row_bytes = (Py_ssize_t)job->frame_size * 3;
    for (int i = 0; i < height; i++) {
        vertical(v, i, middle, width, row_out);
        for (Py_ssize_t t = 0; t < job->ntargets; t++) {
            const int32_t *target = job->targets + 4 * t;
            uint8_t *dst = job->out + (Py_ssize_t)(target[0] + job->offset) * job->frame_bytes
                           + (Py_ssize_t)(job->top + i) * row_bytes + (Py_ssize_t)job->left * 3;
            write_rgb(row_out, width, target + 1, dst);
        }
    }
}

static PyObject *
render(PyObject *self, PyObject *args)
{
    Py_buffer src = {0}, lut = {0}, hview = {0}, vview = {0}, out = {0}, targets = {0},
              scratch = {0};
    PyObject *lut_obj;
    Job job = {0};
    PyObject *result = NULL;

    (void)self;
    if (!PyArg_ParseTuple(args, "y*iOy*y*w*y*iiiiw*:render", &src, &job.bits, &lut_obj,
                          &hview, &vview, &out, &targets, &job.offset, &job.frame_size,
                          &job.top, &job.left, &scratch))
        return NULL;
    if (axis_from(&hview, "horizontal", &job.h) < 0 || axis_from(&vview, "vertical", &job.v) < 0)
        goto done;
    int rows = job.v.n_in, cols = job.h.n_in;
    Py_ssize_t pixels = (Py_ssize_t)rows * cols;
    if (job.bits != 8 && job.bits != 16 && job.bits != 32) {
        PyErr_Format(PyExc_ValueError, "bits must be 8, 16 or 32, not %d", job.bits);
        goto done;
    }
    if (src.len < pixels * (job.bits / 8)) {
        PyErr_Format(PyExc_ValueError, "source holds %zd bytes, %zd needed", src.len,
                     pixels * (job.bits / 8));
        goto done;
    }
    if (job.bits == 32) {
        if (lut_obj != Py_None) {
            PyErr_SetString(PyExc_ValueError, "lane words take no lookup table");
            goto done;
        }
    } else {
        if (lut_obj == Py_None) {
            PyErr_Format(PyExc_ValueError, "%d-bit stored values need a lookup table",
                         job.bits);
            goto done;
        }
        if (PyObject_GetBuffer(lut_obj, &lut, PyBUF_C_CONTIGUOUS) < 0)
            goto done;
        if (lut.len < ((Py_ssize_t)4 << job.bits)) {
            PyErr_Format(PyExc_ValueError, "lookup table holds %zd bytes, %zd needed",
                         lut.len, (Py_ssize_t)4 << job.bits);
            goto done;
        }
        job.lut = (const uint32_t *)lut.buf;
    }
    if (job.frame_size < 1 || job.top < 0 || job.left < 0
        || job.top + job.v.n_out > job.frame_size || job.left + job.h.n_out > job.frame_size) {
        PyErr_SetString(PyExc_ValueError, "the resized slice does not fit in the frame");
        goto done;
    }
    job.frame_bytes = (Py_ssize_t)job.frame_size * job.frame_size * 3;
    Py_ssize_t frames = out.len / job.frame_bytes;
    if (targets.len % 16) {
        PyErr_SetString(PyExc_ValueError, "targets: int32 rows of [frame, lane R, G, B]");
        goto done;
    }
    job.targets = (const int32_t *)targets.buf;
    job.ntargets = targets.len / 16;
    for (Py_ssize_t t = 0; t < job.ntargets; t++) {
        const int32_t *target = job.targets + 4 * t;
        Py_ssize_t frame = (Py_ssize_t)target[0] + job.offset;
        if (frame < 0 || frame >= frames) {
            PyErr_Format(PyExc_ValueError, "target frame %zd outside %zd frames", frame, frames);
            goto done;
        }
        for (int c = 1; c < 4; c++)
            if (target[c] < 0 || target[c] > 3) {
                PyErr_Format(PyExc_ValueError, "target lane %d is not 0-3", target[c]);
                goto done;
            }
    }
    Py_ssize_t need = (cols + ((Py_ssize_t)rows + 1) * job.h.n_out) * 4;
    if (scratch.len < need) {
        PyErr_Format(PyExc_ValueError, "scratch holds %zd bytes, %zd needed", scratch.len, need);
        goto done;
    }
    job.src = src.buf;
    job.out = (uint8_t *)out.buf;
    job.scratch = (uint32_t *)scratch.buf;
    Py_BEGIN_ALLOW_THREADS
    run(&job);
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&src);
    if (lut.obj)
        PyBuffer_Release(&lut);
    PyBuffer_Release(&hview);
    PyBuffer_Release(&vview);
    PyBuffer_Release(&out);
    PyBuffer_Release(&targets);
    PyBuffer_Release(&scratch);
    return result;
}

static PyMethodDef methods[] = {
    {"render", render, METH_VARARGS,
     "render(src, bits, lut, h_axis, v_axis, out, targets, offset, frame_size, top, left, "
     "scratch): window, resize and write one slice into the R, G, B bytes of its frames."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "_slice_kernel",
    .m_doc = "One slice into its frames: lookup, Pillow's resampling, RGB writes, without the GIL.",
    .m_size = 0,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__slice_kernel(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("ssse3"))
        write_rgb = write_rgb_ssse3;
#endif
    return PyModule_Create(&module);
}
