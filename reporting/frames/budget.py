"""The frame budget: how many frames each segment gets.

Rule: the cap is the smaller of the recipe's `max_frames`, the caller's `max_frames` and
what the backend's token budget allows at the frame size. Priors get `prior_share` of it
(what they leave unused goes back to the current study, and vice versa). Inside a group,
frames are shared in proportion to slice counts, so every segment is compressed by about
the same factor (a segment never gets more frames than it has slices), rounded to even
counts, at least 2 per segment; segments that cannot get 2 frames are dropped, last ones
first, and listed as excluded.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

# (height, width, frames wanted) -> frames the model accepts at that size.
TokenBudget = Callable[[int, int, int], int]


# Qwen2.5-VL's video processor: 14-pixel patches merged 2×2, two frames per temporal patch,
# and its default pixel range per frame.
QWEN_FACTOR = 28
QWEN_MIN_PIXELS = 128 * 28 * 28
QWEN_MAX_PIXELS = 768 * 28 * 28


def smart_resize(height: int, width: int, *, factor: int = QWEN_FACTOR,
                 min_pixels: int = QWEN_MIN_PIXELS,
                 max_pixels: int | None = QWEN_MAX_PIXELS) -> tuple[int, int]:
    """The (height, width) Qwen's processor resizes a frame to: sides rounded to multiples
    of `factor`, the area clamped to [min_pixels, max_pixels] (None: no upper bound)."""
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"aspect ratio of {height}x{width} is over 200")
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if max_pixels is not None and h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def qwen_video_tokens(frames: int, height: int, width: int, *, min_pixels: int = 0,
                      max_pixels: int | None = None) -> int:
    """Visual tokens Qwen2.5-VL spends on a video: ceil(T/2)·(h/28)·(w/28) for the frame
    size (h, w) after `smart_resize` (by default without the pixel range: H/28 rounded)."""
    h, w = smart_resize(height, width, min_pixels=min_pixels, max_pixels=max_pixels)
    return math.ceil(frames / 2) * (h // QWEN_FACTOR) * (w // QWEN_FACTOR)


def qwen_token_budget(max_tokens: int, *, min_pixels: int = 0,
                      max_pixels: int | None = None) -> TokenBudget:
    """A TokenBudget for a Qwen-style backend whose video may spend `max_tokens` tokens
    (pass the served processor's pixel range: the token cost follows its resize)."""
    def allowed(height: int, width: int, wanted: int) -> int:
        per_pair = qwen_video_tokens(2, height, width, min_pixels=min_pixels,
                                     max_pixels=max_pixels)
        return min(wanted, 2 * (max_tokens // per_pair))
    return allowed


def frame_cap(recipe_max: int, caller_max: int | None, token_budget: TokenBudget | None,
              frame_size: int) -> int:
    cap = recipe_max if caller_max is None else min(recipe_max, caller_max)
    if token_budget is not None:
        cap = min(cap, token_budget(frame_size, frame_size, cap))
    return max(0, cap - cap % 2)


def _even_up(n: int) -> int:
    return n + n % 2


def share(sizes: Sequence[int], budget: int) -> list[int]:
    """Even frame counts per segment (0 = dropped) summing to at most `budget`."""
    count = len(sizes)
    keep = min(count, budget // 2)
    alloc = [0] * count
    if keep == 0:
        return alloc
    needs = [_even_up(max(s, 1)) for s in sizes[:keep]]
    if sum(needs) <= budget:
        return needs + [0] * (count - keep)
    # Proportional levels (capped at each need), then even rounding, largest remainders.
    remaining = float(budget)
    open_ids = list(range(keep))
    level = [0.0] * keep
    while open_ids:
        weight = sum(needs[i] for i in open_ids)
        fill = {i: remaining * needs[i] / weight for i in open_ids}
        capped = [i for i in open_ids if fill[i] >= needs[i]]
        if not capped:
            for i in open_ids:
                level[i] = fill[i]
            break
        for i in capped:
            level[i] = needs[i]
            remaining -= needs[i]
            open_ids.remove(i)
    evens = [max(2, int(v // 2) * 2) for v in level]
    while sum(evens) > budget:
        biggest = max(range(keep), key=lambda i: evens[i])
        evens[biggest] -= 2
    spare = budget - sum(evens)
    order = sorted(range(keep), key=lambda i: level[i] - evens[i], reverse=True)
    for i in order:
        if spare < 2:
            break
        if evens[i] + 2 <= needs[i]:
            evens[i] += 2
            spare -= 2
    return evens + [0] * (count - keep)


def split_current_prior(cap: int, current: Sequence[int], prior: Sequence[int],
                        prior_share: float) -> tuple[list[int], list[int]]:
    """Frame counts for current and prior segments under one cap."""
    prior_cap = int(cap * prior_share) if prior else 0
    prior_cap -= prior_cap % 2
    cur = share(current, cap - prior_cap)
    pri = share(prior, prior_cap)
    unused_prior = prior_cap - sum(pri)
    if unused_prior >= 2:
        cur = share(current, cap - sum(pri))
    unused_current = cap - sum(cur) - sum(pri)
    if prior and unused_current >= 2:
        pri = share(prior, cap - sum(cur))
    return cur, pri
