"""Estimates with their counts and 95 % intervals: Wilson for proportions, a seeded
percentile bootstrap for means and for statistics over pairs."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")

# Below this many pairs the console and the eval report say "too few to judge".
MIN_PAIRS = 30
Z95 = 1.959963984540054  # the 97.5 % standard normal quantile
BOOTSTRAP_REPS = 1000
SEED = 20261206  # fixed: the same pairs always give the same interval


@dataclass(frozen=True)
class Estimate:
    """One score: its value, the number of pairs (or cases) behind it, a 95 % interval."""

    name: str
    value: float | None
    n: int
    low: float | None = None
    high: float | None = None
    method: str = ""  # "wilson" | "bootstrap" | "" (no interval)
    counts: dict[str, Any] = field(default_factory=dict)

    @property
    def enough(self) -> bool:
        return self.n >= MIN_PAIRS

    @property
    def verdict(self) -> str:
        """What a reader may conclude: "too few to judge" below MIN_PAIRS."""
        if self.value is None:
            return "undefined"
        return "" if self.enough else "too few to judge"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "n": self.n, "low": self.low,
                "high": self.high, "method": self.method, "counts": dict(self.counts),
                "verdict": self.verdict}


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval (Wilson 1927; Newcombe 1998, method 3) of successes/n."""
    if n <= 0:
        raise ValueError("a proportion needs n > 0")
    if not 0 <= successes <= n:
        raise ValueError(f"successes {successes} outside [0, {n}]")
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def proportion(name: str, successes: int, n: int, **counts: Any) -> Estimate:
    """successes/n with its Wilson interval; undefined (None) when n is 0."""
    if n == 0:
        return Estimate(name, None, 0, method="wilson", counts=counts)
    low, high = wilson(successes, n)
    return Estimate(name, successes / n, n, low, high, "wilson", counts)


def bootstrap(
    items: Sequence[T], statistic: Callable[[Sequence[T]], float | None], *,
    reps: int = BOOTSTRAP_REPS, seed: int = SEED,
) -> tuple[float, float] | None:
    """Percentile bootstrap 95 % interval of `statistic` over resamples of `items`
    (resamples where the statistic is undefined are left out)."""
    if len(items) < 2:
        return None
    rng = np.random.default_rng(seed)
    values: list[float] = []
    for _ in range(reps):
        picks = rng.integers(0, len(items), len(items))
        value = statistic([items[i] for i in picks])
        if value is not None:
            values.append(value)
    if not values:
        return None
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def mean_estimate(name: str, values: Sequence[float], **counts: Any) -> Estimate:
    """The mean with a bootstrap interval (vectorised: one draw of all resamples)."""
    if not values:
        return Estimate(name, None, 0, method="bootstrap", counts=counts)
    data = np.asarray(values, dtype=float)
    mean = float(data.mean())
    if len(data) < 2:
        return Estimate(name, mean, len(data), method="bootstrap", counts=counts)
    rng = np.random.default_rng(SEED)
    means = data[rng.integers(0, len(data), (BOOTSTRAP_REPS, len(data)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return Estimate(name, mean, len(data), float(low), float(high), "bootstrap", counts)


def statistic_estimate(
    name: str, items: Sequence[T], statistic: Callable[[Sequence[T]], float | None],
    **counts: Any,
) -> Estimate:
    """A statistic over pairs (macro-F1, CRG) with a bootstrap interval over the pairs."""
    value = statistic(items) if items else None
    if value is None:
        return Estimate(name, None, len(items), method="bootstrap", counts=counts)
    interval = bootstrap(items, statistic, reps=300)
    low, high = interval if interval else (None, None)
    return Estimate(name, value, len(items), low, high, "bootstrap", counts)
