"""The image evidence for a CT contrast phase: a few axial slices of the stack, oriented
(rows anterior → posterior, columns right → left) and sub-sampled to about 2 mm pixels,
handed to `aorta.locate_aorta`, and its finding combined with the header's statement."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from radraft.reporting.frames.aorta import AxialImage, locate_aorta
from radraft.reporting.frames.phase import Label, phase_with_image
from radraft.reporting.frames.study import LabelledStack


def phase_sample_keys(needed: list[int]) -> list[int]:
    """Which slices `phase_from_pixels` looks at: up to ~12 of the middle 80 %."""
    keys = sorted(needed)
    middle = keys[len(keys) // 10: max(len(keys) // 10 + 1, 9 * len(keys) // 10)]
    return middle[:: max(1, len(middle) // 12)]


def _axial_flips(orientation: tuple[float, ...] | None) -> tuple[bool, bool] | None:
    """(flip rows, flip columns) that make rows run anterior → posterior and columns
    right → left; None when the slice is not axial."""
    if orientation is None:
        return None
    row, col = orientation[:3], orientation[3:]
    if abs(abs(row[0]) - 1) > 0.1 or abs(abs(col[1]) - 1) > 0.1:
        return None
    return col[1] < 0, row[0] < 0


def phase_from_pixels(stack: LabelledStack, pixels: dict[int, npt.NDArray[Any]]) -> Label:
    """The CT phase from the header's statement and the aorta's measured HU."""
    assert stack.contrast is not None
    sl = stack.stack.slices
    flips = _axial_flips(sl[0].orientation) if stack.stack.plane == "axial" else None
    spacing = _pixel_spacing(stack)
    finding = None
    if flips is not None and spacing is not None:
        step = max(1, round(2.0 / min(spacing)))  # about 2 mm pixels
        images = []
        for k in sorted(pixels):
            hu = pixels[k][::step, ::step].astype(np.float32) * np.float32(sl[k].slope) \
                + np.float32(sl[k].intercept)
            if flips[0]:
                hu = hu[::-1]
            if flips[1]:
                hu = hu[:, ::-1]
            position = sl[k].position
            z = position[2] if position is not None else 0.0
            images.append(AxialImage(hu, (spacing[0] * step, spacing[1] * step), z))
        finding = locate_aorta(images)
    return phase_with_image(stack.contrast, finding)


def _pixel_spacing(stack: LabelledStack) -> tuple[float, float] | None:
    value = stack.stack.first.get("PixelSpacing")
    try:
        row, col = (float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return (row, col) if row > 0 and col > 0 else None
