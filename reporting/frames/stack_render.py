"""Pixels of one stack into the output frames: sampling, mapping choice, threaded rendering.

A stack is never loaded whole. The unit of work is one frame's source (a slice, or a
slab) shared by every candidate of the stack with the same slabs: a thread reads it into
its own buffers and `_slice_kernel.render` windows it for all those candidates' mappings
at once (one byte lane per mapping of a 32-bit word: one table lookup for a single slice),
resizes every lane (Pillow's BOX bit for bit) and writes each lane into the channels of
the frames that show it, in one pass without the GIL. A slab is combined and windowed in
float by numpy first. Peak memory is the output plus a few slices per thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from radraft.core.recipe import FrameRecipe
from radraft.reporting.frames import slice_kernel as _slice_kernel  # native, or numpy+Pillow
from radraft.reporting.frames.box import axis_table
from radraft.reporting.frames.geometry import Slice
from radraft.reporting.frames.loading import read_frame_into
from radraft.reporting.frames.output import FrameBuffer
from radraft.reporting.frames.render import (
    Layout,
    SliceScale,
    accumulate,
    finish,
    lut_applies,
    packed_lut,
    resize_rgb,
    to_rgb,
)
from radraft.reporting.frames.study import LabelledStack
from radraft.reporting.frames.windows import Mapping, ct_window, percentile_mapping, window_float

_PROGRESS_EVERY = 64  # work units per progress line (per stack)
_MAX_LANES = 4  # mappings windowed together: the bytes of a uint32
_LANES = np.dtype(np.uint32)


@dataclass(slots=True)
class Candidate:
    """One stack under one mapping: a segment before the budget."""

    stack: LabelledStack
    windows: tuple[str, ...]  # CT window names (3 when packed); () for percentile/colour
    frames: int = 0
    notes: tuple[str, ...] = ()
    mapping: Mapping | None = None  # a fixed mapping (PET SUV); None: windows/percentiles
    kind: str = "stack"  # "stack": its slices; "mip", "fusion": PET views (pet_frames)
    want: int | None = None  # frames wanted, when not one per slice
    partner: LabelledStack | None = None  # fusion: the CT
    pet_indices: tuple[int, ...] = ()  # fusion: the PET slices inside the CT's z range

    @property
    def size(self) -> int:
        """What the budget shares frames by (slices, or the frames a view wants)."""
        return self.want if self.want is not None else len(self.stack.stack.slices)


def slabs(count: int, frames: int) -> list[list[int]]:
    """Slice index groups, one per frame (before padding)."""
    if frames >= count:
        return [[i] for i in range(count)]
    return [list(chunk) for chunk in np.array_split(np.arange(count), frames)]


@dataclass(frozen=True, slots=True)
class _Target:
    start: int  # frame index of the candidate's first frame
    lanes: tuple[int, ...]  # lane shown in each RGB channel; () for colour stacks


@dataclass(slots=True)
class _Group:
    """Candidates of one stack rendered from the same slabs."""

    slabs: list[list[int]]  # the slices actually combined (`sample`: the central one)
    mappings: list[Mapping]  # one per lane
    targets: list[_Target]
    table: npt.NDArray[np.int32] | None = None  # [start, lane R, G, B] per target (kernel)

    def freeze(self) -> _Group:
        if self.mappings:
            self.table = np.array([(t.start, *t.lanes) for t in self.targets], dtype=np.int32)
        return self


@dataclass(frozen=True, slots=True)
class _StackInfo:
    """What every unit of a stack needs, read from its first header once."""

    slices: list[Slice]
    rows: int
    cols: int
    stored: np.dtype[Any]  # stored value type (uint8 for colour)
    shape: tuple[int, ...]  # one slice: rows × cols (× samples)
    colour: bool
    invert: bool  # MONOCHROME1
    layout: Layout

    @classmethod
    def of(cls, stack: LabelledStack, size: int) -> _StackInfo:
        first = stack.stack.first
        return cls(stack.stack.slices, first.rows, first.columns, _stored_dtype(stack),
                   _slice_shape(stack), first.samples == 3,
                   str(first.header.get("PhotometricInterpretation", "")) == "MONOCHROME1",
                   Layout.fit(first.rows, first.columns, size))


class _Buffers(threading.local):
    """Per-thread scratch arrays, reused for every unit (faulted in once)."""

    def __init__(self) -> None:
        self.arrays: dict[tuple[Any, ...], npt.NDArray[Any]] = {}

    def array(self, name: str, shape: tuple[int, ...], dtype: np.dtype[Any]) -> npt.NDArray[Any]:
        key = (name, shape, dtype.str)
        if key not in self.arrays:
            self.arrays[key] = np.empty(shape, dtype=dtype)
        return self.arrays[key]


def _stored_dtype(stack: LabelledStack) -> np.dtype[Any]:
    first = stack.stack.first
    return first.stored_dtype if first.samples == 1 else np.dtype(np.uint8)


def _slice_shape(stack: LabelledStack) -> tuple[int, ...]:
    first = stack.stack.first
    return (first.rows, first.columns) + ((first.samples,) if first.samples > 1 else ())


class StackRenderer:
    """Turns one stack's candidates into frames of the output array."""

    def __init__(self, buffer: FrameBuffer, recipe: FrameRecipe,
                 pool: ThreadPoolExecutor) -> None:
        self._buffer = buffer
        self.out = buffer.frames
        self.recipe = recipe
        self.pool = pool
        self.size = recipe.frame_size
        self._local = _Buffers()

    def sample(self, stack: LabelledStack, keys: list[int]) -> dict[int, npt.NDArray[Any]]:
        """A few slices of the stack, each in its own array (mappings, phase guesses)."""
        slices = stack.stack.slices

        def read(key: int) -> npt.NDArray[Any]:
            pixels = np.empty(_slice_shape(stack), dtype=_stored_dtype(stack))
            read_frame_into(slices[key].inst, slices[key].frame, pixels)
            return pixels

        return dict(zip(keys, self.pool.map(read, keys), strict=True))

    def read_one(self, stack: LabelledStack, key: int) -> npt.NDArray[Any]:
        """One slice's stored values in this thread's buffer (valid until its next read)."""
        sl = stack.stack.slices[key]
        pixels = self._local.array("one", _slice_shape(stack), _stored_dtype(stack))
        read_frame_into(sl.inst, sl.frame, pixels)
        return pixels

    def target(self, start: int) -> Callable[[int], npt.NDArray[np.uint8]]:
        """`target(t)`: frame `start + t`, its pages populated, zeroed (letterbox)."""
        def frame(t: int) -> npt.NDArray[np.uint8]:
            self._buffer.prepare(start + t)
            out: npt.NDArray[np.uint8] = self.out[start + t]
            out.fill(0)
            return out
        return frame

    def mapping_of(self, cand: Candidate, needed: list[int]) -> list[Mapping]:
        if cand.mapping is not None:
            return [cand.mapping]
        if cand.windows:
            return [ct_window(w) for w in cand.windows]
        if cand.stack.stack.first.samples == 3:
            return []  # colour stays colour
        slices = cand.stack.stack.slices
        pixels = self.sample(cand.stack, sorted(needed)[:: max(1, len(needed) // 16)])
        sample = [pixels[k][::4, ::4].astype(np.float32) * slices[k].slope + slices[k].intercept
                  for k in sorted(pixels)]
        mapping = percentile_mapping(np.stack(sample))
        if cand.stack.modality == "PT":  # PET is read dark on white
            mapping = replace(mapping, invert=True)
        return [mapping]

    def render(self, stack: LabelledStack,
               parts: list[tuple[Candidate, list[list[int]], int, list[Mapping]]],
               report: Callable[[int], None]) -> None:
        """Every (candidate, slabs, first frame, mappings) of one stack into `out`."""
        groups = self._groups(stack, parts)
        info = _StackInfo.of(stack, self.size)
        longest = max(len(g.slabs) for g in groups)
        # Frame t of every group side by side: the same slice is read once per group.
        units = [(g, t) for t in range(longest) for g in groups if t < len(g.slabs)]

        def unit(item: tuple[_Group, int]) -> int:
            return self._unit(info, *item)

        for chunk in range(0, len(units), _PROGRESS_EVERY):
            report(sum(self.pool.map(unit, units[chunk:chunk + _PROGRESS_EVERY])))

    def _groups(self, stack: LabelledStack,
                parts: list[tuple[Candidate, list[list[int]], int, list[Mapping]]],
                ) -> list[_Group]:
        by_slabs: dict[tuple[tuple[int, ...], ...], list[_Group]] = {}
        colour = stack.stack.first.samples == 3
        for _cand, plan, start, mappings in parts:
            used = [[s[len(s) // 2]] if self.recipe.combine == "sample" and len(s) > 1 else s
                    for s in plan]
            groups = by_slabs.setdefault(tuple(tuple(s) for s in used), [])
            if colour:
                if not groups:
                    groups.append(_Group(used, [], []))
                groups[0].targets.append(_Target(start, ()))
                continue
            wanted = mappings * 3 if len(mappings) == 1 else mappings  # grey: R = G = B
            group = next((g for g in groups if len(set(g.mappings) | set(wanted))
                          <= _MAX_LANES), None)
            if group is None:
                group = _Group(used, [], [])
                groups.append(group)
            for mapping in wanted:
                if mapping not in group.mappings:
                    group.mappings.append(mapping)
            group.targets.append(_Target(start, tuple(group.mappings.index(m) for m in wanted)))
        return [g.freeze() for groups in by_slabs.values() for g in groups]

    def _unit(self, info: _StackInfo, group: _Group, t: int) -> int:
        """Frame t of every target of `group`; returns the number of frames written."""
        layout = info.layout
        slab = group.slabs[t]
        if not group.mappings:
            image = resize_rgb(to_rgb(self._read_all(info, slab), self.recipe.combine), layout)
            for target in group.targets:
                self._region(target.start + t, layout)[...] = image
            return len(group.targets)
        source, bits, lut = self._window(info, group.mappings, slab)
        for target in group.targets:
            self._prepare(target.start + t, layout)
        scratch = self._local.array(
            "kernel", (info.cols + (info.rows + 1) * layout.width,), _LANES)
        assert group.table is not None
        _slice_kernel.render(source, bits, lut, axis_table(info.cols, layout.width),
                             axis_table(info.rows, layout.height), self.out, group.table, t,
                             self.size, layout.top, layout.left, scratch)
        return len(group.targets)

    def _prepare(self, index: int, layout: Layout) -> None:
        """Populate frame `index`'s pages; zero it when the image will not fill it."""
        self._buffer.prepare(index)
        if (layout.height, layout.width) != (self.size, self.size):
            self.out[index].fill(0)

    def _region(self, index: int, layout: Layout) -> npt.NDArray[np.uint8]:
        self._prepare(index, layout)
        frame = self.out[index]
        region: npt.NDArray[np.uint8] = frame[layout.top:layout.top + layout.height,
                                              layout.left:layout.left + layout.width]
        return region

    def _window(self, info: _StackInfo, mappings: list[Mapping], slab: list[int],
                ) -> tuple[npt.NDArray[Any], int, npt.NDArray[np.uint32] | None]:
        """What the kernel windows: (stored values, their bits, the packed table) for a
        single slice; (rows × cols lane words, 32, None) for a slab, windowed here."""
        slices = info.slices
        stored = self._local.array("stored", info.shape, info.stored)
        read_frame_into(slices[slab[0]].inst, slices[slab[0]].frame, stored)
        if len(slab) == 1 and lut_applies(stored):
            # Rescale and every window in one lookup of the stored value (in the kernel).
            sl = slices[slab[0]]
            bits = stored.dtype.itemsize * 8
            lut = packed_lut(tuple(mappings), sl.slope, sl.intercept, stored.dtype.kind == "i",
                             bits, info.invert)
            return stored, bits, lut
        lanes = self._local.array("lanes", (info.rows, info.cols), _LANES)
        values = self._local.array("values", (info.rows, info.cols), np.dtype(np.float32))
        scratch = self._local.array("real", (info.rows, info.cols), np.dtype(np.float32))
        for i, index in enumerate(slab):
            if i:
                read_frame_into(slices[index].inst, slices[index].frame, stored)
            accumulate(values, stored, SliceScale(slices[index].slope, slices[index].intercept),
                       i, self.recipe.combine, scratch)
        finish(values, len(slab), self.recipe.combine)
        grey = lanes.view(np.uint8).reshape(info.rows, info.cols, _LANES.itemsize)
        for lane, mapping in enumerate(mappings):
            window_float(values, mapping, out=grey[..., lane])
            if info.invert:
                np.subtract(255, grey[..., lane], out=grey[..., lane])
        return lanes, 32, None

    def _read_all(self, info: _StackInfo, slab: list[int]) -> npt.NDArray[Any]:
        stored = self._local.array("slab", (len(slab), *info.shape), info.stored)
        for pos, index in enumerate(slab):
            sl = info.slices[index]
            read_frame_into(sl.inst, sl.frame, stored[pos])
        return stored
