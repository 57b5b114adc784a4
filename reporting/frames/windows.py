"""Intensity mappings: CT window presets (HU), MR robust percentiles, and their LUTs.

One formula for every path so a lookup table and a float computation give the same grey
levels: ``grey = rint(clip((value - (centre - width/2)) / width, 0, 1) * 255)``.
"""

from __future__ import annotations

import re
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
    "soft tissue": (40, 350),
}
_REGIONS: tuple[tuple[str, re.Pattern[str], tuple[str, ...]], ...] = (
    ("whole body", re.compile(r"whole ?body|\bwb\b|skull.{0,12}thigh|vertex|pet", re.I),
     ("lung", "abdomen", "bone")),
    ("head", re.compile(r"head|brain|skull|cran|kopf|sch[äa]del|sinus|orbit|\biac\b", re.I),
     ("brain", "subdural", "bone")),
    ("neck", re.compile(r"neck|cervical|c-?spine|larynx|pharyn|thyroid|hals", re.I),
     ("soft tissue", "bone")),
    ("chest", re.compile(r"chest|thorax|lung|thx|pulmo|cardiac|heart|coronar", re.I),
     ("lung", "mediastinum", "bone")),
    ("abdomen/pelvis", re.compile(r"abdom|pelvi|liver|leber|kidney|renal|\babd\b|becken",
                                  re.I), ("abdomen", "liver", "bone")),
)
# A stack longer than this along the body covers several regions: windows for each.
WHOLE_BODY_MM = 600.0
PERCENTILE_LOW = 1.0
PERCENTILE_HIGH = 99.0


@dataclass(frozen=True, slots=True)
class Mapping:
    """A linear mapping value → grey level, named for the segment table."""

    name: str
    low: float  # value mapped to 0 (to 255 when inverted)
    high: float  # value mapped to 255 (to 0 when inverted)
    invert: bool = False  # high values dark (PET read as inverted grey)

    @property
    def width(self) -> float:
        return max(self.high - self.low, 1e-6)


# PET on a fixed scale, as it is read: SUVbw 0 (white) to 10 (black).
SUV_MAPPING = Mapping("SUV 0-10 inverted grey (white 0, black 10+)", 0.0, 10.0, invert=True)


def auto_windows(words: str, extent_mm: float) -> tuple[tuple[str, ...], str]:
    """CT windows for `windows: [auto]`, from body part / description words and the stack's
    length along the body; returns (window names, the region they were chosen for)."""
    if extent_mm >= WHOLE_BODY_MM:
        return _REGIONS[0][2], f"whole body ({extent_mm:.0f} mm long)"
    for region, pattern, names in _REGIONS:
        if pattern.search(words):
            return names, region
    return ("abdomen", "lung", "bone"), "body part not given"


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
    if mapping.invert:
        np.subtract(np.float32(255), scaled, out=scaled)
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
