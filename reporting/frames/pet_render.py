"""PET as it is read: a rotating MIP and CT-PET fusion frames (SUV on a fixed scale).

Fusion needs a CT stack that shares the PET's Frame of Reference and overlaps it in
patient z; otherwise the reason is stated (in the PET segment's notes and the prompt).
Both kinds of frame are computed with numpy from a few slices at a time, apart from the
MIP, which needs the PET volume (sub-sampled to at most 128 pixels a side: ~10 MB).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from radraft.reporting.frames.render import Layout
from radraft.reporting.frames.study import LabelledStack
from radraft.reporting.frames.windows import (
    Mapping,
    ct_window,
    stored_value_lut,
    window_float,
)

MIP_VIEWS = 12
_MIP_SIDE = 128
_MIN_OVERLAP_MM = 10.0
Reader = Callable[[LabelledStack, list[int]], dict[int, npt.NDArray[Any]]]
Target = Callable[[int], npt.NDArray[np.uint8]]  # frame t of the segment, ready to write


@dataclass(slots=True)
class CtFrames:
    """Frames the sequence already holds for CT slices in the abdomen window."""

    frames: npt.NDArray[np.uint8]
    where: dict[tuple[str, int | None], tuple[int, int]]  # (SOP, frame no.) → (frame, channel)

    def get(self, key: tuple[str, int | None]) -> tuple[int, int] | None:
        return self.where.get(key)


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


def render_mip(pet: LabelledStack, mapping: Mapping, read: Reader, count: int, size: int,
               target: Target, pool: ThreadPoolExecutor | None = None) -> None:
    """`count` maximum intensity projections, rotating about the patient's long axis
    (first view from the front, then turning towards the patient's left)."""
    slices = pet.stack.slices
    first = pet.stack.first
    step = max(1, math.ceil(max(first.rows, first.columns) / _MIP_SIDE))
    pixels = read(pet, list(range(len(slices))))
    # Grey steps before projecting (the mapping is monotonic, so the maximum commutes
    # with it); inverted after. Long stacks are max-pooled in z to at most 2 × _MIP_SIDE.
    plain = Mapping(mapping.name, mapping.low, mapping.high)
    volume = np.stack([window_float(_values(pet, pixels[i][::step, ::step], i), plain)
                       for i in range(len(slices))])
    pool_z = max(1, math.ceil(volume.shape[0] / (2 * _MIP_SIDE)))
    if pool_z > 1:
        cut = volume.shape[0] - volume.shape[0] % pool_z
        volume = volume[:cut].reshape(-1, pool_z, *volume.shape[1:]).max(axis=1)
    depth, rows, cols = volume.shape
    flat = np.concatenate([volume.reshape(depth, rows * cols),
                           np.zeros((depth, 1), dtype=np.uint8)], axis=1)
    spacing = _pixel_spacing(pet)[1] * step
    side = max(rows, cols)
    centre_r, centre_c = (rows - 1) / 2, (cols - 1) / 2
    u = np.arange(side, dtype=np.float32) - (side - 1) / 2
    along, across = np.meshgrid(u, u, indexing="ij")  # depth × lateral
    z_positions = [sl.position[2] for sl in slices if sl.position is not None]
    z_step = (abs(z_positions[0] - z_positions[-1]) / max(len(z_positions) - 1, 1)
              if len(z_positions) > 1 else spacing) * pool_z
    def one(view: int) -> None:
        angle = 2 * math.pi * view / count
        cos, sin = math.cos(angle), math.sin(angle)
        # Viewer looks along +y (anterior → posterior) at angle 0; lateral axis is x.
        c = np.rint(centre_c + across * cos - along * sin).astype(np.intp)
        r = np.rint(centre_r + across * sin + along * cos).astype(np.intp)
        inside = (r >= 0) & (r < rows) & (c >= 0) & (c < cols)
        # Rays leaving the volume read the appended zero voxel.
        projected = flat[:, np.where(inside, r * cols + c, rows * cols)].max(axis=1)
        if mapping.invert:
            projected = 255 - projected
        grey = np.repeat(projected.astype(np.uint8)[..., None], 3, axis=2)
        target(view)[...] = _fit(grey, size, aspect=z_step / spacing)

    list(pool.map(one, range(count)) if pool is not None else map(one, range(count)))


@dataclass(frozen=True, slots=True)
class _Grid:
    """Where each pixel of the fused frame's image falls in the CT and PET slices."""

    layout: Layout
    pet_rows: npt.NDArray[np.intp]  # PET row per output row (−1: outside the PET)
    pet_cols: npt.NDArray[np.intp]


def _grid(pet: LabelledStack, ct: LabelledStack, size: int) -> _Grid:
    first = ct.stack.first
    ct_dr, ct_dc = _pixel_spacing(ct)
    layout = Layout.fit(first.rows, first.columns, size)  # as the CT's own frames
    pet_pos, ct_pos = pet.stack.slices[0].position, ct.stack.slices[0].position
    assert pet_pos is not None and ct_pos is not None
    pet_dr, pet_dc = _pixel_spacing(pet)
    # Output pixel centres in patient x / y (mm), then the PET pixel they fall in.
    x = ct_pos[0] + (np.arange(layout.width) + 0.5) * (first.columns * ct_dc / layout.width) \
        - ct_dc / 2
    y = ct_pos[1] + (np.arange(layout.height) + 0.5) * (first.rows * ct_dr / layout.height) \
        - ct_dr / 2
    cols = np.rint((x - pet_pos[0]) / pet_dc).astype(np.intp)
    rows = np.rint((y - pet_pos[1]) / pet_dr).astype(np.intp)
    p_rows, p_cols = pet.stack.first.rows, pet.stack.first.columns
    rows[(rows < 0) | (rows >= p_rows)] = -1
    cols[(cols < 0) | (cols >= p_cols)] = -1
    return _Grid(layout, rows, cols)


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


def _blend_table() -> npt.NDArray[np.uint8]:
    """RGB for every (CT grey, PET step) pair: index grey << 8 | step. The 'hot' scale
    (black → red → yellow → white) over the CT with a weight rising with the PET value
    to 60 % at a third of the scale."""
    t = np.arange(256, dtype=np.float64) / 255
    hot = np.stack([np.clip(3 * t, 0, 1), np.clip(3 * t - 1, 0, 1), np.clip(3 * t - 2, 0, 1)],
                   axis=-1) * 255
    alpha = np.clip(3 * t, 0, 1) * 0.6
    grey = np.arange(256, dtype=np.float64)
    rgb = grey[:, None, None] * (1 - alpha)[None, :, None] + (hot * alpha[:, None])[None]
    table: npt.NDArray[np.uint8] = np.rint(rgb).clip(0, 255).astype(np.uint8).reshape(-1, 3)
    return table


_BLEND = _blend_table()


def render_fusion(pet: LabelledStack, plan: FusionPlan, pet_mapping: Mapping,
                  read_one: Callable[[LabelledStack, int], npt.NDArray[Any]],
                  indices: list[int], size: int, target: Target,
                  pool: ThreadPoolExecutor, shown: CtFrames) -> None:
    """Fused frames into `target(t)`: the CT in the abdomen window, the PET value in the
    hot scale over it (`_BLEND`), computed at the frame's own size. Where the sequence
    already shows that CT slice in the abdomen window (`shown`: frame and channel by
    (SOP Instance UID, frame number)), that frame's grey is used as it is."""
    ct = plan.ct
    assert ct is not None
    grid = _grid(pet, ct, size)
    window = ct_window("abdomen")
    plain = Mapping(pet_mapping.name, pet_mapping.low, pet_mapping.high)
    layout = grid.layout
    p_cols = pet.stack.first.columns
    outside = (grid.pet_rows[:, None] < 0) | (grid.pet_cols[None, :] < 0)
    # One gather from the PET slice's steps (flattened, plus a zero step for outside).
    where = np.where(outside, pet.stack.first.rows * p_cols,
                     grid.pet_rows[:, None] * p_cols + grid.pet_cols[None, :]).astype(np.intp)

    def one(item: tuple[int, int]) -> None:
        t, pet_index = item
        ct_index = nearest_ct(plan, pet, pet_index)
        ct_slice = ct.stack.slices[ct_index]
        found = shown.get((ct_slice.inst.sop_uid, ct_slice.frame_number))
        if found is not None:
            grey = shown.frames[found[0], layout.top:layout.top + layout.height,
                                layout.left:layout.left + layout.width, found[1]]
        else:
            stored = read_one(ct, ct_index)
            lut = stored_value_lut(window, ct_slice.slope, ct_slice.intercept,
                                   stored.dtype.kind == "i", stored.dtype.itemsize * 8, False)
            grey = np.asarray(Image.fromarray(lut[stored.view(f"u{stored.dtype.itemsize}")],
                                              mode="L").resize((layout.width, layout.height),
                                                               Image.Resampling.BOX))
        steps = window_float(_values(pet, read_one(pet, pet_index), pet_index), plain)
        steps = np.append(steps.ravel(), np.uint8(0))
        index = (grey.astype(np.uint16) << 8) | steps[where]
        frame = target(t)
        region = frame[layout.top:layout.top + layout.height,
                       layout.left:layout.left + layout.width]
        np.take(_BLEND, index, axis=0, out=region)

    list(pool.map(one, enumerate(indices)))
