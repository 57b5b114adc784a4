"""Intensity mappings: CT window presets (HU), MR robust percentiles, and their LUTs.

One formula for every path so a lookup table and a float computation give the same grey
levels: ``grey = rint(clip((value - (centre - width/2)) / width, 0, 1) * 255)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from radraft.core.errors import FrameError

# (centre, width) in HU.
CT_WINDOWS: dict[str, tuple[float, float]] = {
    "brain": (40, 80),
    "subdural": (75, 215),
    "stroke": (35, 40),
    "lung": (-600, 1500),
    "mediastinum": (50, 350),
    "abdomen": (40, 400),
    "liver": (60, 160),
    "bone": (400, 1800),
    "angio": (300, 600),
}
PERCENTILE_LOW = 1.0
PERCENTILE_HIGH = 99.0


@dataclass(frozen=True, slots=True)
class Mapping:
    """A linear mapping value → grey level, named for the segment table."""

    name: str
    low: float  # value mapped to 0
    high: float  # value mapped to 255

    @property
    def width(self) -> float:
        return max(self.high - self.low, 1e-6)


def ct_window(name: str) -> Mapping:
    try:
        centre, width = CT_WINDOWS[name]
    except KeyError:
        raise FrameError(f"unknown CT window {name!r}; known: {', '.join(CT_WINDOWS)}") from None
    return Mapping(name, centre - width / 2, centre + width / 2)


def percentile_mapping(sample: npt.NDArray[np.floating] | npt.NDArray[np.integer]) -> Mapping:
    """Robust 1st–99th percentile mapping of a (sub-sampled) stack of real-world values."""
    flat = np.asarray(sample, dtype=np.float32).ravel()
    if flat.size == 0:
        return Mapping("percentile 1-99", 0.0, 1.0)
    low, high = np.percentile(flat, [PERCENTILE_LOW, PERCENTILE_HIGH])
    if high <= low:
        high = low + 1.0
    return Mapping("percentile 1-99", float(low), float(high))


def window_float(
    values: npt.NDArray[np.floating], mapping: Mapping, out: npt.NDArray[np.uint8] | None = None,
) -> npt.NDArray[np.uint8]:
    """Map real-world values (HU, MR signal) to uint8 grey levels."""
    scaled = (values.astype(np.float32, copy=False) - np.float32(mapping.low)) * np.float32(
        255.0 / mapping.width)
    np.clip(scaled, 0, 255, out=scaled)
    np.rint(scaled, out=scaled)
    if out is None:
        return scaled.astype(np.uint8)
    np.copyto(out, scaled, casting="unsafe")
    return out


@lru_cache(maxsize=64)
def stored_value_lut(
    mapping: Mapping, slope: float, intercept: float, signed: bool, bits: int, invert: bool,
) -> npt.NDArray[np.uint8]:
    """A table stored value → grey level (rescale and window in one lookup).

    Indexed by the stored value reinterpreted as unsigned (`view(np.uint16)`), so signed
    data uses the two's-complement order.
    """
    count = 1 << bits
    raw = np.arange(count, dtype=np.int64)
    if signed:
        raw = np.where(raw >= count // 2, raw - count, raw)
    values = raw.astype(np.float64) * slope + intercept
    lut = window_float(values.astype(np.float32), mapping)
    if invert:
        lut = 255 - lut
    lut.setflags(write=False)
    return lut
