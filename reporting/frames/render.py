"""Pixels of one frame: slab combination, intensity mapping, antialiased resize.

Resampling filter: PIL's BOX filter, i.e. area averaging (every output pixel is the
area-weighted mean of the source pixels it covers). Shrinking without it aliases thin
structures (PIL's bilinear also antialiases; OpenCV's INTER_LINEAR does not).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from radraft.reporting.frames.windows import Mapping, stored_value_lut, window_float

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


def to_grey(
    stored: npt.NDArray[Any], scales: list[SliceScale], mapping: Mapping, combine: str,
    invert: bool,
) -> npt.NDArray[np.uint8]:
    """One grey image from a slab of stored values (slab axis 0)."""
    if stored.shape[0] == 1 and stored.dtype.itemsize <= 2 and stored.dtype.kind in "iu":
        # One slice: rescale and window in a single table lookup.
        bits = stored.dtype.itemsize * 8
        lut = stored_value_lut(mapping, scales[0].slope, scales[0].intercept,
                               stored.dtype.kind == "i", bits, invert)
        index = stored[0].view(np.uint16 if bits == 16 else np.uint8)
        looked_up: npt.NDArray[np.uint8] = np.take(lut, index)
        return looked_up
    values = np.empty(stored.shape[1:], dtype=np.float32)
    for i, scale in enumerate(scales):
        real = stored[i].astype(np.float32) * np.float32(scale.slope) + np.float32(
            scale.intercept)
        if i == 0:
            values[...] = real
        elif combine == "mip":
            np.maximum(values, real, out=values)
        else:
            values += real
    if combine != "mip" and len(scales) > 1:
        values /= np.float32(len(scales))
    grey = window_float(values, mapping)
    if invert:
        np.subtract(255, grey, out=grey)
    return grey


def to_rgb(stored: npt.NDArray[Any], combine: str) -> npt.NDArray[np.uint8]:
    """A colour image from a slab of RGB slices (slab axis 0)."""
    if stored.shape[0] == 1:
        return np.asarray(stored[0], dtype=np.uint8)
    if combine == "mip":
        return np.asarray(stored.max(axis=0), dtype=np.uint8)
    mean: npt.NDArray[np.float64] = stored.mean(axis=0)
    return np.rint(mean).astype(np.uint8)
