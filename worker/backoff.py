"""Exponential back-off with jitter, kept in `next_attempt_at` (never in a countdown)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta


def backoff_delay_s(attempts: int, *, base_s: float, cap_s: float, rng: random.Random) -> float:
    """Seconds to wait before attempt `attempts + 1`: base * 2^(attempts-1), capped, with
    "equal jitter" (half fixed, half random) so retries of many rows spread out."""
    exponent = max(attempts - 1, 0)
    ceiling = min(cap_s, base_s * (2.0 ** min(exponent, 32)))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def next_attempt(
    now: datetime, attempts: int, *, base_s: float, cap_s: float,
    rng: random.Random | None = None,
) -> datetime:
    delay = backoff_delay_s(attempts, base_s=base_s, cap_s=cap_s, rng=rng or random.Random())
    return now + timedelta(seconds=delay)
