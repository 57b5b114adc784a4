"""Pillow's BOX resize, exactly: its coefficients, laid out for the native slice kernel.

`Image.resize(..., BOX)` on an 8-bit image is two passes (horizontal, then vertical), each
rounded to 8 bits, with coefficients from Pillow's `precompute_coeffs` and
`normalize_coeffs_8bpc` (libImaging/Resample.c, 22-bit fixed point). The coefficients
are recomputed here with Pillow's own double arithmetic, so `_slice_kernel` applies the
same filter, not an approximation of it. For a box filter every output pixel is the mean
of the input pixels whose centres fall inside its box; below a scale of 2 that is one or
two pixels with equal weights, and Pillow's fixed-point result is exactly
``(a + b + 1) >> 1`` (one pixel: ``a``), which the kernel computes on four lanes at once.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt

PRECISION_BITS = 32 - 8 - 2  # Resample.c
_ONE = 1 << PRECISION_BITS
_HALF = 1 << (PRECISION_BITS - 1)


def pillow_box_coefficients(n_in: int, n_out: int) -> list[tuple[int, list[int]]]:
    """(first input index, fixed-point weights) per output pixel, as Pillow computes them."""
    scale = n_in / n_out
    filterscale = max(scale, 1.0)
    support = 0.5 * filterscale
    ss = 1.0 / filterscale
    coefficients = []
    for xx in range(n_out):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), n_in) - xmin
        weights = []
        for x in range(xmax):
            t = (x + xmin - center + 0.5) * ss
            weights.append(1.0 if -0.5 < t <= 0.5 else 0.0)
        total = sum(weights)
        fixed = [int(0.5 + (w / total if total else w) * _ONE) for w in weights]
        coefficients.append((xmin, fixed))
    return coefficients


def two_taps(xmin: int, weights: list[int]) -> tuple[int, int] | None:
    """The one input, or the two equally weighted inputs, of an output pixel; else None."""
    taps = [(xmin + i, k) for i, k in enumerate(weights) if k]
    if len(taps) == 1 and taps[0][1] == _ONE:
        return taps[0][0], taps[0][0]
    if len(taps) == 2 and taps[0][1] == taps[1][1] == _HALF:
        return taps[0][0], taps[1][0]
    return None


@lru_cache(maxsize=64)
def axis_table(n_in: int, n_out: int) -> npt.NDArray[np.int32]:
    """One axis for `_slice_kernel.render`, as one read-only int32 array:

    ``[n_in, n_out, kmax, two_tap, xmin[n_out], xlen[n_out], weights[n_out × kmax],
    first[n_out], second[n_out]]`` (first/second: the two-tap form, when every output has one).
    """
    if n_in < 1 or n_out < 1:
        raise ValueError(f"cannot resize {n_in} pixels to {n_out}")
    coefficients = pillow_box_coefficients(n_in, n_out)
    kmax = max(len(weights) for _xmin, weights in coefficients)
    weights = np.zeros((n_out, kmax), dtype=np.int32)
    for j, (_xmin, fixed) in enumerate(coefficients):
        weights[j, : len(fixed)] = fixed
    pairs = [two_taps(xmin, fixed) for xmin, fixed in coefficients]
    two_tap = all(pair is not None for pair in pairs)
    first = [pair[0] if pair else 0 for pair in pairs]
    second = [pair[1] if pair else 0 for pair in pairs]
    table = np.concatenate([
        np.array([n_in, n_out, kmax, int(two_tap)], dtype=np.int32),
        np.array([xmin for xmin, _w in coefficients], dtype=np.int32),
        np.array([len(fixed) for _xmin, fixed in coefficients], dtype=np.int32),
        weights.ravel(), np.array(first, dtype=np.int32), np.array(second, dtype=np.int32)])
    table.setflags(write=False)
    return table
