"""PET as it is read: a rotating MIP and CT-PET fusion frames (SUV on a fixed scale).

Fusion needs a CT stack that shares the PET's Frame of Reference and overlaps it in
patient z; otherwise the reason is stated (in the PET segment's notes and the prompt).
Both kinds of frame are computed with numpy from a few slices at a time, apart from the
MIP, which needs the PET volume (sub-sampled to at most 128 pixels a side: ~10 MB).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from radraft.reporting.frames.render import Layout
from radraft.reporting.frames.study import LabelledStack
from radraft.reporting.frames.windows import SUV_MAPPING, Mapping, ct_window, window_float

MIP_VIEWS = 16
_MIP_SIDE = 128
_MIN_OVERLAP_MM = 10.0
Reader = Callable[[LabelledStack, list[int]], dict[int, npt.NDArray[Any]]]


@dataclass(frozen=True, slots=True)
class FusionPlan:
    ct: LabelledStack | None
    note: str  # why there is no fusion, or what it is fused with
    pet_indices: tuple[int, ...] = ()  # PET slices inside the CT's z range


def _z(stack: LabelledStack) -> list[float]:
    return [sl.position[2] if sl.position is not None else math.nan for sl in stack.stack.slices]


def _name(stack: LabelledStack) -> str:
    return f'{stack.modality} series {stack.series_number} "{stack.description}"'


def plan_fusion(pet: LabelledStack, stacks: list[LabelledStack]) -> FusionPlan:
    """The CT to fuse `pet` with: same study, axial, same Frame of Reference, overlapping z."""
    if pet.stack.plane != "axial":
        return FusionPlan(None, f"no CT-PET fusion: {_name(pet)} is not axial")
    cts = [s for s in stacks if s.modality == "CT" and s.study_uid == pet.study_uid
           and s.stack.plane == "axial" and s.stack.first.samples == 1]
    if not cts:
        return FusionPlan(None, "no CT-PET fusion: the study has no axial CT")
    same = [s for s in cts if s.frame_of_reference and
            s.frame_of_reference == pet.frame_of_reference]
    if not same:
        names = ", ".join(_name(s) for s in cts[:3])
        return FusionPlan(None, f"no CT-PET fusion: {_name(pet)} and {names} do not share a "
                                "Frame of Reference (their positions are not comparable)")
    pet_z = _z(pet)

    def overlap(ct: LabelledStack) -> tuple[int, ...]:
        ct_z = [z for z in _z(ct) if not math.isnan(z)]
        if not ct_z or max(ct_z) - min(ct_z) < _MIN_OVERLAP_MM:
            return ()
        low, high = min(ct_z), max(ct_z)
        return tuple(i for i, z in enumerate(pet_z) if low - 1.0 <= z <= high + 1.0)

    best = max(same, key=lambda s: (len(overlap(s)), not s.derived, len(s.stack.slices)))
    inside = overlap(best)
    if not inside:
        ct_z = _z(best)
        return FusionPlan(None, f"no CT-PET fusion: {_name(pet)} (z {min(pet_z):.0f} to "
                                f"{max(pet_z):.0f} mm) and {_name(best)} (z {min(ct_z):.0f} "
                                f"to {max(ct_z):.0f} mm) do not overlap in patient z")
    return FusionPlan(best, f"fused with {_name(best)}", inside)


def _values(stack: LabelledStack, pixels: npt.NDArray[Any], index: int) -> npt.NDArray[np.float32]:
    sl = stack.stack.slices[index]
    return pixels.astype(np.float32) * np.float32(sl.slope) + np.float32(sl.intercept)


def _fit(image: npt.NDArray[np.uint8], size: int, aspect: float = 1.0) -> npt.NDArray[np.uint8]:
    """An RGB image into a size² frame, letterboxed; `aspect` = row mm / column mm."""
    rows, cols = image.shape[:2]
    layout = Layout.fit(max(1, round(rows * aspect)), cols, size)
    resized = np.asarray(Image.fromarray(image, mode="RGB").resize(
        (layout.width, layout.height), Image.Resampling.BILINEAR))
    frame = np.zeros((size, size, 3), dtype=np.uint8)
    frame[layout.top:layout.top + layout.height, layout.left:layout.left + layout.width] = resized
    return frame


def _grey(values: npt.NDArray[np.float32], mapping: Mapping) -> npt.NDArray[np.uint8]:
    grey = window_float(values, mapping)
    return np.repeat(grey[..., None], 3, axis=2)


def render_mip(pet: LabelledStack, mapping: Mapping, read: Reader, count: int,
               size: int) -> list[npt.NDArray[np.uint8]]:
    """`count` maximum intensity projections, rotating about the patient's long axis
    (first view from the front, then turning towards the patient's left)."""
    slices = pet.stack.slices
    first = pet.stack.first
    step = max(1, math.ceil(max(first.rows, first.columns) / _MIP_SIDE))
    pixels = read(pet, list(range(len(slices))))
    volume = np.stack([_values(pet, pixels[i][::step, ::step], i) for i in range(len(slices))])
    _, rows, cols = volume.shape
    spacing = _spacing(pet) * step
    side = max(rows, cols)
    centre_r, centre_c = (rows - 1) / 2, (cols - 1) / 2
    u = np.arange(side, dtype=np.float32) - (side - 1) / 2
    along, across = np.meshgrid(u, u, indexing="ij")  # depth × lateral
    z_positions = [sl.position[2] for sl in slices if sl.position is not None]
    z_step = (abs(z_positions[0] - z_positions[-1]) / max(len(z_positions) - 1, 1)
              if len(z_positions) > 1 else spacing)
    out = []
    for view in range(count):
        angle = 2 * math.pi * view / count
        cos, sin = math.cos(angle), math.sin(angle)
        # Viewer looks along +y (anterior → posterior) at angle 0; lateral axis is x.
        c = np.rint(centre_c + across * cos - along * sin).astype(np.intp)
        r = np.rint(centre_r + across * sin + along * cos).astype(np.intp)
        inside = (r >= 0) & (r < rows) & (c >= 0) & (c < cols)
        rr, cc = np.where(inside, r, 0), np.where(inside, c, 0)
        projected = np.where(inside[None], volume[:, rr, cc], 0.0).max(axis=1)
        out.append(_fit(_grey(projected.astype(np.float32), mapping), size,
                        aspect=z_step / spacing))
    return out


def _spacing(stack: LabelledStack) -> float:
    value = stack.stack.first.get("PixelSpacing")
    try:
        return float(value[0])
    except (TypeError, ValueError, IndexError):
        return 1.0


def _hot(suv: npt.NDArray[np.float32], mapping: Mapping) -> npt.NDArray[np.float32]:
    """The 'hot' colour scale (black → red → yellow → white) over the mapping's range."""
    t = np.clip((suv - mapping.low) / (mapping.high - mapping.low), 0, 1)
    rgb: npt.NDArray[np.float32] = np.stack([np.clip(3 * t, 0, 1), np.clip(3 * t - 1, 0, 1),
                     np.clip(3 * t - 2, 0, 1)], axis=-1).astype(np.float32) * 255
    return rgb


def _pet_on_ct_grid(pet: LabelledStack, pet_values: npt.NDArray[np.float32],
                    ct: LabelledStack, ct_shape: tuple[int, int]) -> npt.NDArray[np.float32]:
    """The PET slice resampled (nearest) onto the CT slice's pixel grid by patient x/y."""
    pet_pos = pet.stack.slices[0].position
    ct_pos = ct.stack.slices[0].position
    assert pet_pos is not None and ct_pos is not None
    ct_dr, ct_dc = _pixel_spacing(ct)
    pet_dr, pet_dc = _pixel_spacing(pet)
    x = ct_pos[0] + np.arange(ct_shape[1]) * ct_dc
    y = ct_pos[1] + np.arange(ct_shape[0]) * ct_dr
    c = np.rint((x - pet_pos[0]) / pet_dc).astype(np.intp)
    r = np.rint((y - pet_pos[1]) / pet_dr).astype(np.intp)
    rows, cols = pet_values.shape
    ok_r, ok_c = (r >= 0) & (r < rows), (c >= 0) & (c < cols)
    grid: npt.NDArray[np.float32] = pet_values[np.clip(r, 0, rows - 1)][:, np.clip(c, 0, cols - 1)]
    grid[~ok_r] = 0
    grid[:, ~ok_c] = 0
    return grid


def _pixel_spacing(stack: LabelledStack) -> tuple[float, float]:
    value = stack.stack.first.get("PixelSpacing")
    try:
        return float(value[0]), float(value[1])
    except (TypeError, ValueError, IndexError):
        return 1.0, 1.0


def fusion_indices(plan: FusionPlan, count: int) -> list[int]:
    """Which PET slices the `count` fusion frames show (evenly over the overlap)."""
    inside = list(plan.pet_indices)
    if count >= len(inside):
        return inside
    return [inside[round(k * (len(inside) - 1) / max(count - 1, 1))] for k in range(count)]


def nearest_ct(plan: FusionPlan, pet: LabelledStack, index: int) -> int:
    assert plan.ct is not None
    z = pet.stack.slices[index].position
    assert z is not None
    ct_z = _z(plan.ct)
    return int(np.nanargmin([abs(c - z[2]) for c in ct_z]))


def render_fusion(pet: LabelledStack, plan: FusionPlan, pet_mapping: Mapping, read: Reader,
                  indices: list[int], size: int) -> list[npt.NDArray[np.uint8]]:
    """CT (soft tissue window) with the PET's SUV in the hot scale blended over it: the
    overlay's opacity rises with SUV to 60 % at a third of the scale."""
    ct = plan.ct
    assert ct is not None
    ct_window_map = ct_window("abdomen")
    ct_keys = [nearest_ct(plan, pet, i) for i in indices]
    pet_pixels = read(pet, sorted(set(indices)))
    ct_pixels = read(ct, sorted(set(ct_keys)))
    out = []
    for pet_index, ct_index in zip(indices, ct_keys, strict=True):
        ct_values = _values(ct, ct_pixels[ct_index], ct_index)
        grey = window_float(ct_values, ct_window_map).astype(np.float32)
        suv = _pet_on_ct_grid(pet, _values(pet, pet_pixels[pet_index], pet_index), ct,
                              ct_values.shape)
        plain = Mapping(pet_mapping.name, pet_mapping.low, pet_mapping.high)
        alpha = np.clip((suv - plain.low) / (plain.high - plain.low) * 3, 0, 1)[..., None] * 0.6
        rgb = grey[..., None] * (1 - alpha) + _hot(suv, plain) * alpha
        out.append(_fit(np.rint(rgb).astype(np.uint8), size,
                        aspect=_pixel_spacing(ct)[0] / _pixel_spacing(ct)[1]))
    return out


def default_mapping(pet: LabelledStack) -> Mapping | None:
    return SUV_MAPPING if pet.suv else None
