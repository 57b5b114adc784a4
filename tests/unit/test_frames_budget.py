"""The frame budget: caps, shares, even counts, priors, the Qwen token rule."""

from __future__ import annotations

import pytest

from radraft.reporting.frames.budget import (
    frame_cap,
    qwen_token_budget,
    qwen_video_tokens,
    share,
    split_current_prior,
)


def test_everything_fits_gets_one_frame_per_slice_rounded_even() -> None:
    assert share([10, 7, 3], 100) == [10, 8, 4]


def test_frames_are_shared_in_proportion_to_slices() -> None:
    # Same slab thickness everywhere: 420 slices into 120 frames, about 3.5 per frame.
    assert share([200, 200, 20], 120) == [58, 56, 6]


def test_segments_that_cannot_get_two_frames_are_dropped_last_first() -> None:
    assert share([50, 50, 50, 50], 6) == [2, 2, 2, 0]
    assert share([5], 1) == [0]


def test_priors_get_their_share_and_return_what_they_do_not_use() -> None:
    cur, pri = split_current_prior(100, [300], [300], 0.25)
    assert (cur, pri) == ([76], [24])
    cur, pri = split_current_prior(100, [300], [10], 0.25)
    assert pri == [10] and cur == [90]
    cur, pri = split_current_prior(100, [20], [300], 0.25)
    assert cur == [20] and pri == [80]


def test_qwen_tokens_and_budget() -> None:
    # 448² → 16×16 merged patches per temporal pair.
    assert qwen_video_tokens(64, 448, 448) == 32 * 256
    assert qwen_video_tokens(3, 448, 448) == 2 * 256
    allowed = qwen_token_budget(16_384)
    assert allowed(448, 448, 1000) == 128
    assert allowed(448, 448, 50) == 50
    assert frame_cap(256, None, allowed, 448) == 128
    assert frame_cap(256, 101, None, 448) == 100


@pytest.mark.parametrize("budget", [2, 7, 64, 255, 1000])
def test_share_never_exceeds_budget_or_slices(budget: int) -> None:
    sizes = [1, 3, 64, 200, 17, 9]
    counts = share(sizes, budget)
    assert sum(counts) <= budget
    for size, count in zip(sizes, counts, strict=True):
        assert count % 2 == 0 and count <= size + size % 2
