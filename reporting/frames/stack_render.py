"""Pixels of one stack into the output frames: loading, mapping choice, threaded rendering."""

from __future__ import annotations

import mmap
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from radraft.core.settings import FrameRecipe
from radraft.reporting.frames.classify import Label, ct_phase_from_image
from radraft.reporting.frames.loading import read_frame_into
from radraft.reporting.frames.render import (
    Layout,
    SliceScale,
    resize_grey,
    resize_rgb,
    to_grey,
    to_rgb,
)
from radraft.reporting.frames.study import LabelledStack
from radraft.reporting.frames.windows import Mapping, ct_window, percentile_mapping

_PROGRESS_EVERY = 64  # frame indices per progress line (per stack)


@dataclass(slots=True)
class Candidate:
    """One stack under one mapping: a segment before the budget."""

    stack: LabelledStack
    windows: tuple[str, ...]  # CT window names (3 when packed); () for percentile/colour
    frames: int = 0


def slabs(count: int, frames: int) -> list[list[int]]:
    """Slice index groups, one per frame (before padding)."""
    if frames >= count:
        return [[i] for i in range(count)]
    return [list(chunk) for chunk in np.array_split(np.arange(count), frames)]


class StackRenderer:
    """Turns one stack's candidates into frames of the output array."""

    def __init__(self, frames: Future[npt.NDArray[np.uint8]], recipe: FrameRecipe,
                 pool: ThreadPoolExecutor) -> None:
        # The output array arrives from another thread (its pages are being populated
        # while the first stack loads); `run` waits for it.
        self._frames = frames
        self.out: npt.NDArray[np.uint8] = np.empty((0, 0, 0, 3), dtype=np.uint8)
        self.recipe = recipe
        self.pool = pool
        self.size = recipe.frame_size
        self._scratch: npt.NDArray[np.uint8] = np.empty(0, dtype=np.uint8)

    def load(self, stack: LabelledStack, needed: list[int]) -> dict[int, npt.NDArray[Any]]:
        first = stack.stack.first
        rows, cols, samples = first.rows, first.columns, first.samples
        dtype = first.stored_dtype if samples == 1 else np.dtype(np.uint8)
        shape = (len(needed), rows, cols) + ((samples,) if samples > 1 else ())
        nbytes = int(np.prod(shape)) * dtype.itemsize
        if self._scratch.nbytes < nbytes:
            # One scratch buffer reused by every stack: its pages are faulted in once.
            self._scratch = np.empty(nbytes, dtype=np.uint8)
        buffer = self._scratch[:nbytes].view(dtype).reshape(shape)
        slices = stack.stack.slices

        def read(pos: int) -> None:
            sl = slices[needed[pos]]
            read_frame_into(sl.inst, sl.frame, buffer[pos])

        list(self.pool.map(read, range(len(needed))))
        return {index: buffer[pos] for pos, index in enumerate(needed)}

    def mapping_of(self, cand: Candidate, pixels: dict[int, npt.NDArray[Any]]) -> list[Mapping]:
        if cand.windows:
            return [ct_window(w) for w in cand.windows]
        slices = cand.stack.stack.slices
        keys = sorted(pixels)[:: max(1, len(pixels) // 16)]
        sample = [pixels[k][::4, ::4].astype(np.float32) * slices[k].slope + slices[k].intercept
                  for k in keys]
        return [percentile_mapping(np.stack(sample))]

    def job(self, cand: Candidate, slabs: list[list[int]], start: int,
            pixels: dict[int, npt.NDArray[Any]], mappings: list[Mapping],
            ) -> Callable[[int], None]:
        """A function rendering frame `t` of this candidate (thread-safe, GIL mostly off)."""
        stack = cand.stack.stack
        first = stack.first
        layout = Layout.fit(first.rows, first.columns, self.size)
        invert = str(first.header.get("PhotometricInterpretation", "")) == "MONOCHROME1"
        combine = self.recipe.combine
        letterboxed = (layout.height, layout.width) != (self.size, self.size)

        def one(t: int) -> None:
            slab = slabs[t]
            if combine == "sample" and len(slab) > 1:
                slab = [slab[len(slab) // 2]]
            # A single slice is a view, not a copy; only slabs are stacked.
            stored = pixels[slab[0]][None] if len(slab) == 1 else np.stack(
                [pixels[i] for i in slab])
            frame = self.out[start + t]
            if letterboxed:
                frame.fill(0)
            region = frame[layout.top:layout.top + layout.height,
                           layout.left:layout.left + layout.width]
            if first.samples == 3:
                region[...] = resize_rgb(to_rgb(stored, combine), layout)
                return
            scales = [SliceScale(stack.slices[i].slope, stack.slices[i].intercept) for i in slab]
            if len(mappings) == 3:
                for channel, mapping in enumerate(mappings):
                    grey = to_grey(stored, scales, mapping, combine, invert)
                    region[..., channel] = resize_grey(grey, layout)
            else:
                grey = resize_grey(to_grey(stored, scales, mappings[0], combine, invert), layout)
                # Three plain channel copies: a broadcast `grey[..., None]` is 2-3× slower.
                region[..., 0] = grey
                region[..., 1] = grey
                region[..., 2] = grey

        return one

    def run(self, jobs: list[tuple[Callable[[int], None], int]],
            report: Callable[[int], None]) -> None:
        """Frame t of every job in one task, so a slice is windowed while it is in cache."""
        longest = max(count for _, count in jobs)
        self.out = self._frames.result()

        def task(t: int) -> int:
            done = 0
            for render, count in jobs:
                if t < count:
                    render(t)
                    done += 1
            return done

        for chunk in range(0, longest, _PROGRESS_EVERY):
            ts = range(chunk, min(longest, chunk + _PROGRESS_EVERY))
            report(sum(self.pool.map(task, ts)))


def allocate_frames(shape: tuple[int, int, int, int]) -> npt.NDArray[np.uint8]:
    """The output array, its pages populated by the kernel in one call.

    Faulting a gigabyte of frames in page by page while rendering costs 0.4-1.2 s of
    system time here; MAP_POPULATE costs about half and does not vary with the load.
    """
    nbytes = int(np.prod(shape))
    populate = getattr(mmap, "MAP_POPULATE", 0)
    if nbytes < (64 << 20) or not populate:
        return np.empty(shape, dtype=np.uint8)
    memory = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | populate)
    return np.frombuffer(memory, dtype=np.uint8).reshape(shape)


def phase_from_pixels(stack: LabelledStack, pixels: dict[int, npt.NDArray[Any]]) -> Label:
    keys = sorted(pixels)
    middle = keys[len(keys) // 4: max(len(keys) // 4 + 1, 3 * len(keys) // 4)]
    sl = stack.stack.slices
    step = max(1, max(stack.stack.first.rows, stack.stack.first.columns) // 128)
    images = [pixels[k][::step, ::step].astype(np.float32) * np.float32(sl[k].slope)
              + np.float32(sl[k].intercept) for k in middle[:: max(1, len(middle) // 8)]]
    return ct_phase_from_image(images)
