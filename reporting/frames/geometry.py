"""Slice geometry: per-frame position/orientation/rescale, coherent stacks, planes.

Slices are ordered by their position along the slice normal (never by Instance Number).
The normal's sign is canonical, so axial stacks run head → feet, coronal anterior →
posterior and sagittal right → left whatever order the scanner wrote them in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset

from radraft.core.errors import FrameError
from radraft.reporting.frames.loading import Instance

# Modalities whose images are cross sections: their slices must carry geometry.
CROSS_SECTIONAL = {"CT", "MR", "PT"}
_ORIENTATION_DECIMALS = 3
_POSITION_TOLERANCE_MM = 0.01


@dataclass(frozen=True, slots=True)
class Slice:
    """One frame of one instance, with what is needed to place and rescale it."""

    inst: Instance
    frame: int  # 0-based index inside the instance
    position: tuple[float, float, float] | None
    orientation: tuple[float, ...] | None
    slope: float
    intercept: float

    @property
    def frame_number(self) -> int | None:
        return self.frame + 1 if self.inst.frame_count > 1 else None


@dataclass(slots=True)
class Stack:
    """Slices of one series sharing orientation and size, sorted along the normal."""

    slices: list[Slice]
    plane: str
    normal: tuple[float, float, float] | None
    positions: list[float]  # distance along the normal, same order as slices
    # A slab of a series split at a gap: (part, parts, gap to the previous part in mm).
    part: tuple[int, int, float] | None = None
    # Why the order is not by position ("position not given"), or "".
    order_note: str = ""

    @property
    def first(self) -> Instance:
        return self.slices[0].inst


def _functional(ds: Dataset, index: int, group: str, item: str) -> Any:
    """`item` of functional group `group` for frame `index` (per-frame, then shared)."""
    for seq_name in ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence"):
        seq = ds.get(seq_name)
        if not seq:
            continue
        fg = seq[index] if seq_name.startswith("PerFrame") and index < len(seq) else seq[0]
        inner = fg.get(group)
        if inner and item in inner[0]:
            return inner[0].get(item)
    return None


def _floats(value: Any, count: int, what: str, source: str) -> tuple[float, ...] | None:
    if value is None or value == "":
        return None
    try:
        numbers = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise FrameError(f"{source}: {what} {value!r} is not numeric") from None
    if len(numbers) != count:
        raise FrameError(f"{source}: {what} has {len(numbers)} values, expected {count}")
    return numbers


def slices_of(inst: Instance) -> list[Slice]:
    """One Slice per frame, reading enhanced functional groups where present."""
    out = []
    enhanced = inst.has("PerFrameFunctionalGroupsSequence") or inst.has(
        "SharedFunctionalGroupsSequence")
    for index in range(inst.frame_count):
        if enhanced:
            ds = inst.header
            ipp = _functional(ds, index, "PlanePositionSequence", "ImagePositionPatient")
            iop = _functional(ds, index, "PlaneOrientationSequence", "ImageOrientationPatient")
            slope = _functional(ds, index, "PixelValueTransformationSequence", "RescaleSlope")
            intercept = _functional(
                ds, index, "PixelValueTransformationSequence", "RescaleIntercept")
        else:
            ipp = iop = slope = intercept = None
        if ipp is None:
            ipp = (inst.header.get("ImagePositionPatient") if inst.values is None
                   else inst.values.numbers(inst, "ImagePositionPatient"))
        iop = iop if iop is not None else inst.get("ImageOrientationPatient")
        if slope is None:
            # PET writes a slope per slice: the decimal-string fast path, not pydicom.
            slope = (inst.get("RescaleSlope", 1) if inst.values is None
                     else _first(inst.values.numbers(inst, "RescaleSlope"), 1))
        intercept = intercept if intercept is not None else inst.get("RescaleIntercept", 0)
        position = _floats(ipp, 3, "Image Position (Patient)", inst.source)
        try:
            slope_f, intercept_f = float(slope or 1), float(intercept or 0)
        except (TypeError, ValueError):
            raise FrameError(f"{inst.source}: Rescale Slope/Intercept {slope!r}/{intercept!r} "
                             "are not numbers") from None
        out.append(Slice(
            inst, index,
            position if position is None else (position[0], position[1], position[2]),
            _floats(iop, 6, "Image Orientation (Patient)", inst.source), slope_f, intercept_f))
    return out


def _first(value: Any, default: float) -> Any:
    if value is None or value == "":
        return default
    if isinstance(value, tuple):
        return value[0] if value else default
    return value


def _normal(orientation: Sequence[float]) -> npt.NDArray[np.float64]:
    row = np.asarray(orientation[:3], dtype=np.float64)
    col = np.asarray(orientation[3:], dtype=np.float64)
    normal = np.cross(row, col)
    norm = float(np.linalg.norm(normal))
    if norm < 1e-6:
        raise ValueError("degenerate orientation")
    normal /= norm
    axis = int(np.argmax(np.abs(normal)))
    # Canonical sign: axial head→feet (−z), coronal anterior→posterior (+y), sagittal R→L (+x).
    wanted = -1.0 if axis == 2 else 1.0
    if np.sign(normal[axis]) != wanted:
        normal = -normal
    return normal


def plane_of(normal: npt.NDArray[np.float64]) -> str:
    axis = int(np.argmax(np.abs(normal)))
    if abs(normal[axis]) < 0.8:
        return "oblique"
    return ("sagittal", "coronal", "axial")[axis]


def _split_at_gaps(stack: Stack) -> list[Stack]:
    """Slabs separated by a gap (more than 3× the usual spacing and 10 mm) apart."""
    pos = stack.positions
    if len(pos) < 3:
        return [stack]
    steps = np.diff(np.asarray(pos, dtype=np.float64))
    usual = float(np.median(steps))
    cuts = [i + 1 for i, step in enumerate(steps) if step > max(3 * usual, usual + 10.0)]
    if not cuts:
        return [stack]
    bounds = [0, *cuts, len(pos)]
    parts = []
    for k in range(len(bounds) - 1):
        a, b = bounds[k], bounds[k + 1]
        gap = pos[a] - pos[a - 1] if k else 0.0
        parts.append(Stack(stack.slices[a:b], stack.plane, stack.normal, pos[a:b],
                           (k + 1, len(bounds) - 1, gap)))
    return parts


def _frame_order(sl: Slice) -> tuple[int, int]:
    return (int(sl.inst.get("InstanceNumber", 0) or 0), sl.frame)


def build_stacks(slices: list[Slice], modality: str) -> tuple[list[Stack], list[str]]:
    """Split one series' slices into coherent stacks and sort each along its normal.

    Also returns why slices were left out (a degenerate orientation). Cross-sectional
    slices without position or orientation are kept, in frame (instance) order, in a
    stack of their own marked "position not given".
    """
    groups: dict[tuple[Any, ...], list[Slice]] = defaultdict(list)
    unplaced: list[Slice] = []
    problems: list[str] = []
    for sl in slices:
        if sl.position is None or sl.orientation is None:
            unplaced.append(sl)
            continue
        key = (tuple(round(v, _ORIENTATION_DECIMALS) for v in sl.orientation),
               sl.inst.rows, sl.inst.columns, sl.inst.samples)
        groups[key].append(sl)
    stacks: list[Stack] = []
    for key, members in groups.items():
        try:
            normal = _normal(key[0])
        except ValueError:
            problems.append(f"Image Orientation (Patient) {key[0]} has parallel row and "
                            f"column vectors ({len(members)} slices)")
            continue
        distances = [float(np.dot(normal, sl.position)) for sl in members if sl.position]
        order = sorted(range(len(members)), key=lambda i: distances[i])
        # Duplicate positions (two acquisitions in one series): k-th copy → k-th stack.
        layers: list[list[int]] = []
        last: float | None = None
        copy = 0
        for i in order:
            if last is not None and abs(distances[i] - last) <= _POSITION_TOLERANCE_MM:
                copy += 1
            else:
                copy = 0
            last = distances[i]
            while len(layers) <= copy:
                layers.append([])
            layers[copy].append(i)
        for layer in layers:
            stacks.extend(_split_at_gaps(Stack(
                [members[i] for i in layer], plane_of(normal),
                (float(normal[0]), float(normal[1]), float(normal[2])),
                [distances[i] for i in layer])))
    if unplaced:
        # Projection images (DX, CR, US...) and cross sections without geometry: their own
        # order (instance, then frame number), one image per frame.
        unplaced.sort(key=_frame_order)
        by_size: dict[tuple[int, int, int], list[Slice]] = defaultdict(list)
        for sl in unplaced:
            by_size[(sl.inst.rows, sl.inst.columns, sl.inst.samples)].append(sl)
        cross = modality in CROSS_SECTIONAL
        for members in by_size.values():
            stacks.append(Stack(
                members, "position not given" if cross else "projection", None,
                [float(i) for i in range(len(members))],
                order_note="position not given: frame order" if cross else ""))
    return stacks, problems
