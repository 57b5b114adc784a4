"""Pixels of one frame: slab combination, intensity mapping, antialiased resize.

Resampling filter: PIL's BOX filter, i.e. area averaging (every output pixel is the mean
of the source pixels whose centres fall in its box). Shrinking without it aliases thin
structures (PIL's bilinear also antialiases; OpenCV's INTER_LINEAR does not). Grey images
are resized by `_slice_kernel` (the same filter, bit for bit, several windows at once);
colour images by Pillow.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from radraft.reporting.frames.windows import Mapping, stored_value_lut

RESAMPLE = Image.Resampling.BOX
RESAMPLE_NAME = "area averaging (PIL BOX)"


@dataclass(frozen=True, slots=True)
class Layout:
    """Where a source image of rows × cols lands in a square frame (letterboxed)."""

    height: int
    width: int
    top: int
    left: int

    @classmethod
    def fit(cls, rows: int, cols: int, size: int) -> Layout:
        scale = size / max(rows, cols)
        height = max(1, min(size, round(rows * scale)))
        width = max(1, min(size, round(cols * scale)))
        return cls(height, width, (size - height) // 2, (size - width) // 2)


def resize_grey(image: npt.NDArray[np.uint8], layout: Layout) -> npt.NDArray[np.uint8]:
    if image.shape == (layout.height, layout.width):
        return image
    pil = Image.fromarray(np.ascontiguousarray(image), mode="L")
    return np.asarray(pil.resize((layout.width, layout.height), RESAMPLE))


def resize_rgb(image: npt.NDArray[np.uint8], layout: Layout) -> npt.NDArray[np.uint8]:
    if image.shape[:2] == (layout.height, layout.width):
        return image
    pil = Image.fromarray(np.ascontiguousarray(image), mode="RGB")
    return np.asarray(pil.resize((layout.width, layout.height), RESAMPLE))


@dataclass(frozen=True, slots=True)
class SliceScale:
    slope: float
    intercept: float


@lru_cache(maxsize=64)
def packed_lut(mappings: tuple[Mapping, ...], slope: float, intercept: float, signed: bool,
               bits: int, invert: bool) -> npt.NDArray[Any]:
    """Stored value → one grey level per mapping (at most 4), in the bytes of a uint32.

    The same tables as `stored_value_lut`; one lookup then windows a slice for every
    mapping at once.
    """
    if len(mappings) > 4:
        raise ValueError(f"{len(mappings)} mappings do not fit the 4 bytes of a word")
    packed = np.zeros(1 << bits, dtype=np.uint32)
    for lane, mapping in enumerate(mappings):
        lut = stored_value_lut(mapping, slope, intercept, signed, bits, invert)
        packed |= lut.astype(np.uint32) << np.uint32(8 * lane)
    packed.setflags(write=False)
    return packed


def lut_applies(stored: npt.NDArray[Any]) -> bool:
    """Whether a single slice of this type is windowed by table lookup."""
    return stored.dtype.itemsize <= 2 and stored.dtype.kind in "iu"


def accumulate(values: npt.NDArray[np.float32], stored: npt.NDArray[Any], scale: SliceScale,
               index: int, combine: str, scratch: npt.NDArray[np.float32]) -> None:
    """Add slice number `index` of a slab (its stored values) into `values` (real units).

    Real value = float32(stored) * float32(slope) + float32(intercept), computed in place
    (`scratch` is a buffer of the same shape), so no temporaries are allocated.
    """
    real = values if index == 0 else scratch
    np.multiply(stored, np.float32(scale.slope), out=real, dtype=np.float32)
    np.add(real, np.float32(scale.intercept), out=real)
    if index == 0:
        return
    if combine == "mip":
        np.maximum(values, real, out=values)
    else:
        values += real


def finish(values: npt.NDArray[np.float32], count: int, combine: str) -> None:
    """After `count` slices: the slab's mean (the maximum, for `mip`, is already there)."""
    if combine != "mip" and count > 1:
        values /= np.float32(count)


def to_rgb(stored: npt.NDArray[Any], combine: str) -> npt.NDArray[np.uint8]:
    """A colour image from a slab of RGB slices (slab axis 0)."""
    if stored.shape[0] == 1:
        return np.asarray(stored[0], dtype=np.uint8)
    if combine == "mip":
        return np.asarray(stored.max(axis=0), dtype=np.uint8)
    mean: npt.NDArray[np.float64] = stored.mean(axis=0)
    return np.rint(mean).astype(np.uint8)
