"""PIL's BOX resize of 8-bit images, exactly, for several images packed as byte lanes.

`Image.resize(..., BOX)` on an 8-bit image is two passes (horizontal, then vertical), each
rounded to 8 bits, with coefficients from Pillow's `precompute_coeffs` and
`normalize_coeffs_8bpc` (libImaging/Resample.c, 22-bit fixed point). For a box filter
every output pixel is the mean of the input pixels whose centres fall inside its box.
When the scale is below 2 that is one or two pixels, and Pillow's fixed-point result is
exactly ``(a + b + 1) >> 1`` (one pixel: ``a``). That average is computed here on unsigned
words holding 1, 2 or 4 grey images side by side (one per byte: "lanes"), with the
carry-free identity ``(a | b) - (((a ^ b) & 0xFE..FE) >> 1)``, so one pass serves every
window of a slice. The coefficients are recomputed with Pillow's own double arithmetic
and checked, so this is the same filter, not an approximation of it; a scale this does not
cover (2 or more, or an axis whose pattern does not repeat with a short period) goes to
Pillow itself, one lane at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from math import gcd
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

_PRECISION_BITS = 32 - 8 - 2  # Resample.c
_MAX_PERIOD = 16  # longer periods make too many small strided copies to beat Pillow
LANE_DTYPES: dict[int, np.dtype[Any]] = {
    1: np.dtype(np.uint8), 2: np.dtype(np.uint16), 4: np.dtype(np.uint32)}


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
        fixed = [int(0.5 + (w / total if total else w) * (1 << _PRECISION_BITS))
                 for w in weights]
        coefficients.append((xmin, fixed))
    return coefficients


@dataclass(frozen=True, slots=True)
class AxisPlan:
    """Output pixel j = round-half-up mean of inputs first[j] and second[j] (equal: copy)."""

    n_in: int
    n_out: int
    first: npt.NDArray[np.intp]
    second: npt.NDArray[np.intp]
    period_in: int  # first[j + period_out] == first[j] + period_in for every j
    period_out: int  # 0: the pattern does not repeat with a short period

    @property
    def identity(self) -> bool:
        return self.n_in == self.n_out


@lru_cache(maxsize=64)
def axis_plan(n_in: int, n_out: int) -> AxisPlan | None:
    """The two-tap form of Pillow's BOX coefficients for one axis; None if it has none."""
    first = np.empty(n_out, dtype=np.intp)
    second = np.empty(n_out, dtype=np.intp)
    for j, (xmin, weights) in enumerate(pillow_box_coefficients(n_in, n_out)):
        taps = [(xmin + i, k) for i, k in enumerate(weights) if k]
        if len(taps) == 1 and taps[0][1] == 1 << _PRECISION_BITS:
            first[j] = second[j] = taps[0][0]
        elif len(taps) == 2 and taps[0][1] == taps[1][1] == 1 << (_PRECISION_BITS - 1):
            first[j], second[j] = taps[0][0], taps[1][0]
        else:
            return None
    common = gcd(n_in, n_out)
    p_in, p_out = n_in // common, n_out // common
    later = np.arange(p_out, n_out)
    periodic = p_out <= _MAX_PERIOD and bool(
        np.all(first[later] == first[later - p_out] + p_in)
        and np.all(second[later] == second[later - p_out] + p_in))
    first.setflags(write=False)
    second.setflags(write=False)
    return AxisPlan(n_in, n_out, first, second, p_in if periodic else 0,
                    p_out if periodic else 0)


def _mask(dtype: np.dtype[Any]) -> Any:
    return dtype.type(int.from_bytes(b"\xfe" * dtype.itemsize, "little"))


def _average(a: npt.NDArray[Any], b: npt.NDArray[Any], out: npt.NDArray[Any]) -> None:
    """out = (a + b + 1) >> 1 in every byte lane, without carries between lanes."""
    scratch = np.bitwise_xor(a, b)
    scratch &= _mask(out.dtype)
    scratch >>= 1
    np.bitwise_or(a, b, out=out)
    out -= scratch


def _columns(src: npt.NDArray[Any], plan: AxisPlan, out: npt.NDArray[Any]) -> None:
    """Horizontal pass of a periodic plan: p_out strided column copies or averages."""
    rows = src.shape[0]
    blocks = plan.n_out // plan.period_out
    src3 = src.reshape(rows, blocks, plan.period_in)
    out3 = out.reshape(rows, blocks, plan.period_out)
    for c in range(plan.period_out):
        a, b = int(plan.first[c]), int(plan.second[c])
        if a == b:
            out3[:, :, c] = src3[:, :, a]
        else:
            _average(src3[:, :, a], src3[:, :, b], out3[:, :, c])


def _rows(src: npt.NDArray[Any], plan: AxisPlan, out: npt.NDArray[Any]) -> None:
    """Vertical pass: whole-row copies and averages (any plan)."""
    if plan.period_out:
        blocks = plan.n_out // plan.period_out
        src3 = src.reshape(blocks, plan.period_in, -1)
        out3 = out.reshape(blocks, plan.period_out, -1)
        for c in range(plan.period_out):
            a, b = int(plan.first[c]), int(plan.second[c])
            if a == b:
                out3[:, c] = src3[:, a]
            else:
                _average(src3[:, a], src3[:, b], out3[:, c])
        return
    np.take(src, plan.first, axis=0, out=out)
    pairs = np.flatnonzero(plan.first != plan.second)
    if pairs.size:
        averaged = np.empty((pairs.size, src.shape[1]), dtype=src.dtype)
        _average(src[plan.first[pairs]], src[plan.second[pairs]], averaged)
        out[pairs] = averaged


class LaneResizer:
    """Resizes rows × cols lane images to height × width like Pillow's BOX, lane by lane.

    Not thread-safe (it keeps its intermediate buffer): use one per thread.
    """

    def __init__(self, rows: int, cols: int, height: int, width: int,
                 dtype: np.dtype[Any]) -> None:
        self.shape_in = (rows, cols)
        self.shape_out = (height, width)
        self.dtype = dtype
        self.horizontal = axis_plan(cols, width)
        self.vertical = axis_plan(rows, height)
        h_ok = self.horizontal is not None and (
            self.horizontal.identity or self.horizontal.period_out > 0)
        self.vectorised = h_ok and self.vertical is not None
        self._middle = np.empty((rows, width), dtype=dtype)

    def resize(self, lanes: npt.NDArray[Any], out: npt.NDArray[Any]) -> None:
        """`lanes` (rows × cols, LANE_DTYPES) → `out` (height × width, same dtype)."""
        if lanes.shape == self.shape_out:
            np.copyto(out, lanes)
            return
        if not self.vectorised:
            self._resize_with_pillow(lanes, out)
            return
        assert self.horizontal is not None and self.vertical is not None
        middle = lanes
        if not self.horizontal.identity:
            middle = self._middle
            _columns(lanes, self.horizontal, middle)
        if self.vertical.identity:
            np.copyto(out, middle)
        else:
            _rows(middle, self.vertical, out)

    def _resize_with_pillow(self, lanes: npt.NDArray[Any], out: npt.NDArray[Any]) -> None:
        count = lanes.dtype.itemsize
        src = lanes.view(np.uint8).reshape(*self.shape_in, count)
        dst = out.view(np.uint8).reshape(*self.shape_out, count)
        height, width = self.shape_out
        for lane in range(count):
            grey = Image.fromarray(np.ascontiguousarray(src[..., lane]), mode="L")
            dst[..., lane] = np.asarray(grey.resize((width, height), Image.Resampling.BOX))
