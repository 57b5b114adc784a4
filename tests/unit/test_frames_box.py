"""The native slice kernel is Pillow's BOX filter bit for bit and refuses out-of-bounds
tables, and the assembled frames are the plain per-frame computation (window, then Pillow
BOX resize, grey into R, G and B). Each test runs on both kernels: the C extension and the
numpy + Pillow fallback that an install without a compiler uses."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from PIL import Image

from radraft.core.settings import FrameRecipe
from radraft.reporting.frames import _slice_kernel, build_frame_sequence, slice_fallback
from radraft.reporting.frames import slice_kernel as dispatch
from radraft.reporting.frames.box import axis_table, pillow_box_coefficients, two_taps
from radraft.reporting.frames.render import Layout, packed_lut
from radraft.reporting.frames.windows import CT_WINDOWS, ct_window, stored_value_lut
from radraft.reporting.phantom import write_phantom_study

SIZES = [1, 2, 3, 5, 7, 8, 13, 28, 63, 64, 100, 127, 128, 255, 256, 320, 384, 447, 448, 449,
         500, 512, 640, 768, 1024]


Render = Callable[..., None]
KERNELS: dict[str, Render] = {"native": _slice_kernel.render, "python": slice_fallback.render}


@pytest.fixture(params=sorted(KERNELS))
def kernel(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Render:
    """One kernel's render, and build_frame_sequence switched to it."""
    if request.param == "python":
        monkeypatch.setenv(dispatch.FORCE_ENV, "python")
    else:
        monkeypatch.delenv(dispatch.FORCE_ENV, raising=False)
    assert dispatch.active() == request.param
    return KERNELS[request.param]


def _pillow(image: np.ndarray, height: int, width: int) -> np.ndarray:
    return np.asarray(Image.fromarray(image, mode="L").resize((width, height),
                                                              Image.Resampling.BOX))


def _render(kernel: Render, source: np.ndarray, bits: int, lut: np.ndarray | None,
            height: int, width: int, targets: list[tuple[int, int, int, int]], size: int,
            top: int = 0, left: int = 0, frames: int = 4) -> np.ndarray:
    rows, cols = source.shape[:2]
    out = np.full((frames, size, size, 3), 7, dtype=np.uint8)
    scratch = np.empty(cols + (rows + 1) * width, dtype=np.uint32)
    kernel(source, bits, lut, axis_table(cols, width), axis_table(rows, height),
           out, np.array(targets, dtype=np.int32), 0, size, top, left, scratch)
    return out


@pytest.mark.parametrize(("rows", "cols", "height", "width"), [
    (512, 512, 448, 448), (512, 384, 448, 336), (256, 256, 448, 448), (128, 128, 64, 64),
    (512, 512, 224, 224), (500, 512, 448, 448), (100, 60, 84, 50), (64, 64, 64, 32),
    (64, 64, 32, 64), (7, 9, 5, 4), (1, 5, 3, 3), (300, 200, 448, 299), (1024, 768, 448, 336),
    (333, 512, 100, 77)])
def test_kernel_resizes_every_lane_like_pillow_box(rows: int, cols: int, height: int,
                                                   width: int, kernel: Render) -> None:
    """Two-tap scales and general ones (2× and more, odd ratios), four lanes, each lane
    written to its own frame's R, G and B."""
    rng = np.random.default_rng(rows * 7 + cols)
    grey = rng.integers(0, 256, (rows, cols, 4), dtype=np.uint8)
    grey[: rows // 3] = 255  # hard edges as well as noise
    grey[rows // 3: rows // 2] = 0
    words = np.ascontiguousarray(grey).view(np.uint32).reshape(rows, cols)
    size = max(height, width)
    out = _render(kernel, words, 32, None, height, width, [(f, f, f, f) for f in range(4)], size)
    for lane in range(4):
        expected = _pillow(np.ascontiguousarray(grey[..., lane]), height, width)
        for channel in range(3):
            assert np.array_equal(out[lane, :height, :width, channel], expected), lane


def test_kernel_windows_through_the_table_into_chosen_channels_of_a_letterbox(
    kernel: Render,
) -> None:
    """16-bit stored values through a packed table; lanes picked per channel; the kernel
    writes only the resized region (top/left), never the letterbox around it."""
    rng = np.random.default_rng(5)
    stored = rng.integers(-1024, 3000, (60, 100), dtype=np.int16)
    mappings = tuple(ct_window(w) for w in ("abdomen", "lung", "bone"))
    lut = packed_lut(mappings, 1.0, -1024.0, True, 16, False)
    layout = Layout.fit(60, 100, 64)
    out = _render(kernel, stored, 16, lut, layout.height, layout.width,
                  [(1, 2, 0, 1), (3, 1, 1, 1)], 64, layout.top, layout.left)
    region = (slice(layout.top, layout.top + layout.height),
              slice(layout.left, layout.left + layout.width))
    for frame, lanes in ((1, (2, 0, 1)), (3, (1, 1, 1))):
        for channel, lane in enumerate(lanes):
            single = stored_value_lut(mappings[lane], 1.0, -1024.0, True, 16, False)
            expected = _pillow(single[stored.view(np.uint16)], layout.height, layout.width)
            assert np.array_equal(out[frame][region][..., channel], expected)
        outside = out[frame].copy()
        outside[region] = 7
        assert (outside == 7).all()
    assert (out[0] == 7).all() and (out[2] == 7).all()


def test_kernel_refuses_what_would_write_out_of_bounds(kernel: Render) -> None:
    words = np.zeros((8, 8), dtype=np.uint32)
    out = np.zeros((2, 8, 8, 3), dtype=np.uint8)
    scratch = np.empty(8 + 9 * 8, dtype=np.uint32)
    axis = axis_table(8, 8)

    def call(**change: object) -> None:
        args: dict[str, object] = dict(src=words, bits=32, lut=None, h=axis, v=axis, out=out,
                                       targets=np.array([[0, 0, 0, 0]], dtype=np.int32),
                                       offset=0, size=8, top=0, left=0, scratch=scratch)
        args.update(change)
        kernel(*args.values())

    call()
    for change, message in [
        ({"targets": np.array([[2, 0, 0, 0]], dtype=np.int32)}, "outside 2 frames"),
        ({"offset": -1}, "outside 2 frames"),
        ({"targets": np.array([[0, 4, 0, 0]], dtype=np.int32)}, "lane 4"),
        ({"scratch": scratch[:10]}, "scratch"),
        ({"top": 1}, "does not fit"),
        ({"src": words[:4]}, "source holds"),
        ({"bits": 16}, "need a lookup table"),
        ({"bits": 8, "lut": np.zeros(255, dtype=np.uint32)}, "lookup table holds"),
        ({"lut": np.zeros(256, dtype=np.uint32)}, "no lookup table"),
        ({"bits": 12}, "bits must be"),
        ({"h": axis[:-1]}, "malformed"),
        ({"v": axis_table(9, 8)}, "source holds"),
        ({"h": axis_table(8, 9)}, "does not fit"),
    ]:
        with pytest.raises(ValueError, match=message):
            call(**change)


def test_two_tap_form_is_pillow_on_every_size() -> None:
    """Where the kernel averages two pixels (or copies one) instead of Pillow's weighted sum,
    the result is Pillow's, for every pair of sizes here."""
    rng = np.random.default_rng(3)
    covered = 0
    for n_in in SIZES:
        for n_out in SIZES:
            table = axis_table(n_in, n_out)
            if not table[3]:
                assert n_in / n_out >= 2  # only scales of 2 or more need more taps
                continue
            covered += 1
            pairs = [two_taps(xmin, w) for xmin, w in pillow_box_coefficients(n_in, n_out)]
            first = np.array([p[0] for p in pairs if p])
            second = np.array([p[1] for p in pairs if p])
            row = rng.integers(0, 256, (2, n_in), dtype=np.uint8)
            mean = (row[:, first].astype(np.uint16) + row[:, second] + 1) >> 1
            assert np.array_equal(mean.astype(np.uint8), _pillow(row, 2, n_out)), (n_in, n_out)
    assert covered > 350


def test_packed_lut_lanes_are_the_single_window_tables() -> None:
    mappings = tuple(ct_window(w) for w in ("abdomen", "lung", "bone"))
    packed = packed_lut(mappings, 1.0, -1024.0, True, 16, False)
    for lane, mapping in enumerate(mappings):
        single = stored_value_lut(mapping, 1.0, -1024.0, True, 16, False)
        assert np.array_equal((packed >> (8 * lane)) & 0xFF, single)


def _reference(study: Path, windows: list[str], size: int) -> np.ndarray:
    """Every slice × window, the plain way (as bench.frames' naive reference)."""
    datasets = [pydicom.dcmread(p) for p in sorted(study.rglob("*.dcm"))]
    series: dict[str, list[pydicom.Dataset]] = {}
    for ds in datasets:
        series.setdefault(ds.SeriesInstanceUID, []).append(ds)
    frames = []
    for members in sorted(series.values(), key=lambda m: int(m[0].SeriesNumber)):
        members.sort(key=lambda d: -float(d.ImagePositionPatient[2]))  # axial, head first
        for name in windows:
            centre, width = CT_WINDOWS[name]
            for ds in members:
                hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
                grey = np.rint(np.clip((hu - (centre - width / 2)) / width, 0, 1) * 255)
                layout = Layout.fit(ds.Rows, ds.Columns, size)
                small = _pillow(grey.astype(np.uint8), layout.height, layout.width)
                frames.append(np.repeat(small[..., None], 3, axis=2))
    return np.stack(frames)


@pytest.mark.parametrize("size", [112, 100, 64])  # two-tap periodic, Pillow fallback, 2×
def test_frames_equal_the_plain_computation(tmp_path: Path, size: int, kernel: Render) -> None:
    study = write_phantom_study(tmp_path / "ct", phases=["arterial", "portal venous"],
                                slices=6, size=128)
    windows = ["abdomen", "lung", "bone"]
    seq = build_frame_sequence(study.directory, recipe=FrameRecipe(
        windows=windows, frame_size=size, max_frames=10_000))
    assert np.array_equal(seq.frames, _reference(study.directory, windows, size))
    packed = build_frame_sequence(study.directory, recipe=FrameRecipe(
        windows=windows, pack_windows=True, frame_size=size, max_frames=10_000))
    plain = seq.frames[:, :, :, 0].reshape(2, 3, 6, size, size)  # phase, window, slice
    assert np.array_equal(packed.frames, np.moveaxis(plain, 1, -1).reshape(12, size, size, 3))


@pytest.mark.parametrize("combine", ["average", "mip"])
def test_slab_frames_equal_the_plain_computation(tmp_path: Path, combine: str,
                                                 kernel: Render) -> None:
    """Slabs are combined and windowed in float (lane words), then the kernel resizes."""
    study = write_phantom_study(tmp_path / "ct", phases=["portal venous"], slices=12, size=96)
    seq = build_frame_sequence(study.directory, recipe=FrameRecipe(
        windows=["abdomen", "bone"], frame_size=64, max_frames=8, combine=combine))
    datasets = sorted((pydicom.dcmread(p) for p in study.directory.rglob("*.dcm")),
                      key=lambda d: -float(d.ImagePositionPatient[2]))
    hu = np.stack([d.pixel_array.astype(np.float32) * np.float32(d.RescaleSlope)
                   + np.float32(d.RescaleIntercept) for d in datasets])
    for w, name in enumerate(["abdomen", "bone"]):
        centre, width = CT_WINDOWS[name]
        for f, slab in enumerate(np.array_split(np.arange(12), 4)):
            combined = hu[slab].max(axis=0) if combine == "mip" else hu[slab].mean(axis=0)
            grey = np.rint(np.clip((combined - (centre - width / 2)) / width, 0, 1) * 255)
            expected = _pillow(grey.astype(np.uint8), 64, 64)
            got = seq.frames[4 * w + f]
            assert np.abs(got[..., 0].astype(int) - expected).max() <= 1, (name, f)
            assert np.array_equal(got[..., 0], got[..., 1])
            assert np.array_equal(got[..., 0], got[..., 2])


@pytest.mark.parametrize("bits", [8, 16, 32])
def test_fallback_writes_the_native_kernels_bytes(bits: int) -> None:
    """Random slices, sizes, tables, targets and offsets: the fallback's frames are the
    extension's, byte for byte (including what neither may touch)."""
    rng = np.random.default_rng(bits)
    for _ in range(40):
        rows, cols = (int(x) for x in rng.integers(1, 300, 2))
        size = int(rng.integers(8, 160))
        layout = Layout.fit(rows, cols, size)
        dtype = {8: np.uint8, 16: np.uint16, 32: np.uint32}[bits]
        source = rng.integers(0, np.iinfo(dtype).max, (rows, cols), dtype=dtype,
                              endpoint=True)
        lut = None if bits == 32 else rng.integers(0, 2**32, 1 << bits, dtype=np.uint32)
        frames = int(rng.integers(1, 6))
        offset = int(rng.integers(0, frames))
        targets = np.array([[int(rng.integers(-offset, frames - offset)),
                             *rng.integers(0, 4, 3)] for _ in range(int(rng.integers(1, 4)))],
                           dtype=np.int32)
        outs: list[np.ndarray] = []
        for render in (_slice_kernel.render, slice_fallback.render):
            out = np.full((frames, size, size, 3), 7, dtype=np.uint8)
            scratch = np.empty(cols + (rows + 1) * layout.width, dtype=np.uint32)
            args: list[Any] = [source, bits, lut, axis_table(cols, layout.width),
                               axis_table(rows, layout.height), out, targets, offset, size,
                               layout.top, layout.left, scratch]
            render(*args)
            outs.append(out)
        assert np.array_equal(outs[0], outs[1]), (rows, cols, size, targets.tolist())
