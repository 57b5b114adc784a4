"""Qwen2-VL / Qwen2.5-VL video arithmetic: the processor's resize rule, token counts, patches.

The server resizes every frame with `smart_resize` (sides rounded to multiples of 28, area
clamped to [min_pixels, max_pixels]) and merges two frames per temporal patch, so a video
of T frames of H×W costs ceil(T/2)·(h/28)·(w/28) tokens for the resized (h, w). The
truncation check and the frame budget must use that rule, not H/28.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from radraft.reporting.frames.budget import QWEN_MAX_PIXELS, QWEN_MIN_PIXELS, smart_resize

PATCH = 14
MERGE = 2
TEMPORAL = 2
FACTOR = PATCH * MERGE
DEFAULT_MIN_PIXELS = QWEN_MIN_PIXELS
DEFAULT_MAX_PIXELS = QWEN_MAX_PIXELS
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class VideoGrid:
    """The (t, h, w) patch grid of one video and the tokens it costs."""

    t: int
    h: int
    w: int

    @property
    def tokens(self) -> int:
        return self.t * self.h * self.w // (MERGE * MERGE)


def video_grid(frames: int, height: int, width: int, *, min_pixels: int = DEFAULT_MIN_PIXELS,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> VideoGrid:
    h, w = smart_resize(height, width, min_pixels=min_pixels, max_pixels=max_pixels)
    return VideoGrid(t=math.ceil(frames / TEMPORAL), h=h // PATCH, w=w // PATCH)


def patchify(frames: npt.NDArray[np.uint8], *, min_pixels: int = DEFAULT_MIN_PIXELS,
             max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[npt.NDArray[np.float32], VideoGrid]:
    """T×H×W×3 uint8 frames -> (patches, grid) exactly as Qwen2-VL's processor lays them out:
    rows of C·2·14·14 values, merge-window order (the model's vision tower expects it)."""
    t, height, width, _ = frames.shape
    grid = video_grid(t, height, width, min_pixels=min_pixels, max_pixels=max_pixels)
    rh, rw = grid.h * PATCH, grid.w * PATCH
    if (rh, rw) != (height, width):
        from PIL import Image

        frames = np.stack([
            np.asarray(Image.fromarray(f).resize((rw, rh), Image.Resampling.BICUBIC))
            for f in frames])
    if t % TEMPORAL:
        frames = np.concatenate([frames, frames[-1:].repeat(TEMPORAL - t % TEMPORAL, 0)])
    scaled = frames.astype(np.float32)
    scaled /= 255.0
    scaled -= np.asarray(MEAN, np.float32)
    scaled /= np.asarray(STD, np.float32)
    video = scaled.transpose(0, 3, 1, 2)  # T, C, H, W
    channels = video.shape[1]
    patches = video.reshape(
        grid.t, TEMPORAL, channels, grid.h // MERGE, MERGE, PATCH, grid.w // MERGE, MERGE, PATCH)
    patches = patches.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
    flat = patches.reshape(grid.t * grid.h * grid.w, channels * TEMPORAL * PATCH * PATCH)
    return np.ascontiguousarray(flat, dtype=np.float32), grid
