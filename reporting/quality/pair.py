"""One pair (a draft, the final report of the same accession) to its scores."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from radraft.reporting.quality.agreement import confusion, matrices
from radraft.reporting.quality.extract import Lexicon, default_lexicon, extract
from radraft.reporting.quality.text import Sections, draft_sections, overlap_scores, sections
from radraft.reporting.quality.triage import final_is_critical, outcome

# Lead times, in seconds, each from two moments (None when either is unknown):
#   time.draft_s   study complete (stable) -> draft ready
#   time.alert_s   study complete -> ED alert delivered
#   time.lead_s    draft ready -> final report signed (how far ahead the radiologist had it)
TIME_SCORES = ("time.draft_s", "time.alert_s", "time.lead_s")


@dataclass(frozen=True)
class Moments:
    study_complete: datetime | None = None
    draft_ready: datetime | None = None
    alert_sent: datetime | None = None
    final_signed: datetime | None = None


@dataclass
class PairScores:
    """What is stored for one pair: scores by name (with counts), labels, triage."""

    scores: dict[str, float] = field(default_factory=dict)
    counts: dict[str, dict[str, Any]] = field(default_factory=dict)
    draft_labels: dict[str, str] = field(default_factory=dict)
    final_labels: dict[str, str] = field(default_factory=dict)
    final_critical: bool = False
    triage: str = ""  # TP | FP | FN | TN

    def as_dict(self) -> dict[str, Any]:
        return {"scores": self.scores, "counts": self.counts, "draft_labels": self.draft_labels,
                "final_labels": self.final_labels, "final_critical": self.final_critical,
                "triage": self.triage}


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds()


def score_sections(
    draft: Sections, draft_level: str, final_text: str, *, lexicon: Lexicon | None = None,
    moments: Moments | None = None,
) -> PairScores:
    """Score a draft's findings/impression and triage level against a final report."""
    lexicon = lexicon or default_lexicon()
    final = sections(final_text)
    result = PairScores()
    result.scores.update(overlap_scores(draft, final))
    draft_text = f"{draft.findings}\n{draft.impression}"
    result.draft_labels = {k: v.value for k, v in extract(draft_text, lexicon).items()}
    result.final_labels = {k: v.value for k, v in extract(final_text, lexicon).items()}
    pred, gold = matrices([result.draft_labels], [result.final_labels], lexicon.vocabulary)
    c = confusion(pred, gold)
    result.counts["agreement"] = {"tp": c.tp, "fp": c.fp, "fn": c.fn, "tn": c.tn}
    if c.f1 is not None:
        result.scores["agreement.f1"] = c.f1
    result.final_critical = final_is_critical(result.final_labels, final_text, lexicon)
    result.triage = outcome(draft_level, result.final_critical)
    result.counts["triage"] = {"outcome": result.triage, "draft_level": draft_level}
    m = moments or Moments()
    for name, value in zip(TIME_SCORES, (
            _seconds(m.study_complete, m.draft_ready), _seconds(m.study_complete, m.alert_sent),
            _seconds(m.draft_ready, m.final_signed)), strict=True):
        if value is not None:
            result.scores[name] = value
    return result


def score_pair(
    report: Mapping[str, Any], final_text: str, *, lexicon: Lexicon | None = None,
    moments: Moments | None = None,
) -> PairScores:
    """Score a stored DraftReport (its JSON) against the final report's text."""
    level = str(report.get("triage", {}).get("level", "routine"))
    return score_sections(draft_sections(dict(report)), level, final_text, lexicon=lexicon,
                          moments=moments)
