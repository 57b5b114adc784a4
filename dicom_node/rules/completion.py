"""A rule's own say on completeness: `complete_when` (expected series) and `on_discontinued`.

    complete_when:
      series_count: 3                       # at least this many image series ...
      modalities: [CT]                      # ... of these modalities (default: any)
      series_descriptions: ["(?i)arterial", "(?i)portal"]   # each matched by some series

All given conditions must hold. The node evaluates it on every new series; once it holds and
no image arrived for `dicom.complete_when_quiet_s`, the study is complete without waiting
for `stable_seconds`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from radraft.core.yaml_lines import Location

DISCONTINUED_ACTIONS = ("draft", "ignore")
_KEYS = {"series_count", "modalities", "series_descriptions"}


@dataclass(frozen=True)
class SeriesSeen:
    modality: str
    description: str


@dataclass(frozen=True)
class CompleteWhen:
    series_count: int = 0
    modalities: frozenset[str] = frozenset()
    series_descriptions: tuple[re.Pattern[str], ...] = ()

    def met(self, series: Sequence[SeriesSeen]) -> bool:
        counted = [s for s in series
                   if not self.modalities or s.modality.strip().upper() in self.modalities]
        if len(counted) < self.series_count:
            return False
        return all(any(p.search(s.description) for s in counted)
                   for p in self.series_descriptions)


def parse_complete_when(
    value: Any, loc: Location, error: Callable[[Location, str], None],
) -> CompleteWhen | None:
    if not isinstance(value, dict) or not value or set(value) - _KEYS:
        error(loc, f"expected a mapping of {', '.join(sorted(_KEYS))}")
        return None
    count = value.get("series_count", 0)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        error((*loc, "series_count"), "expected a whole number, 0 or more")
        return None
    modalities = value.get("modalities", [])
    if not isinstance(modalities, list) or not all(isinstance(m, str) for m in modalities):
        error((*loc, "modalities"), "expected a list of modalities")
        return None
    patterns = value.get("series_descriptions", [])
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        error((*loc, "series_descriptions"), "expected a list of regular expressions")
        return None
    compiled = []
    for index, pattern in enumerate(patterns):
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            error((*loc, "series_descriptions", index), f"invalid regular expression: {exc}")
            return None
    return CompleteWhen(count, frozenset(m.strip().upper() for m in modalities),
                        tuple(compiled))


def parse_on_discontinued(
    value: Any, loc: Location, error: Callable[[Location, str], None],
) -> str:
    if value not in DISCONTINUED_ACTIONS:
        error(loc, "on_discontinued must be draft or ignore")
        return "ignore"
    return str(value)
