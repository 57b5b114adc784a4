"""Headline estimates over many scored pairs (the console, `radraft eval`, the gauges)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from radraft.reporting.quality.agreement import corpus_estimate, matrices, per_finding
from radraft.reporting.quality.stats import Estimate, mean_estimate
from radraft.reporting.quality.text import TEXT_SCORES
from radraft.reporting.quality.triage import triage_estimates

MEAN_SCORES = (*(f"{s}.{section}" for section in ("findings", "impression")
                  for s in TEXT_SCORES), "time.draft_s", "time.alert_s", "time.lead_s")


@dataclass(frozen=True)
class PairRecord:
    """One scored pair as the summary reads it (from the table or from pairs.jsonl)."""

    scores: Mapping[str, float]
    draft_labels: Mapping[str, str]
    final_labels: Mapping[str, str]
    triage: str


@dataclass
class Summary:
    n: int
    headline: dict[str, Estimate] = field(default_factory=dict)
    findings: dict[str, dict[str, Estimate]] = field(default_factory=dict)
    triage: dict[str, Estimate] = field(default_factory=dict)
    confusion: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.n, "headline": {k: v.as_dict() for k, v in self.headline.items()},
            "findings": {k: {m: e.as_dict() for m, e in v.items()}
                         for k, v in self.findings.items()},
            "triage": {k: v.as_dict() for k, v in self.triage.items()},
            "confusion": self.confusion,
        }


def summarize(
    pairs: Sequence[PairRecord], vocabulary: Sequence[str], *, uncertain_positive: bool = True,
    findings: bool = True,
) -> Summary:
    """Headline estimates, triage and (with `findings`) the per-finding table, whose
    bootstrap is the slow part: groups of a page leave it out."""
    summary = Summary(n=len(pairs))
    for name in MEAN_SCORES:
        values = [p.scores[name] for p in pairs if name in p.scores]
        summary.headline[name] = mean_estimate(name, values)
    pred, gold = matrices([p.draft_labels for p in pairs], [p.final_labels for p in pairs],
                          vocabulary, uncertain_positive=uncertain_positive)
    summary.headline["macro_f1"] = corpus_estimate("macro_f1", pred, gold)
    summary.headline["crg"] = corpus_estimate("crg", pred, gold)
    if findings:
        summary.findings = per_finding(pred, gold, vocabulary)
    outcomes = [p.triage for p in pairs if p.triage]
    summary.triage = triage_estimates(outcomes)
    counted = Counter(outcomes)
    summary.confusion = {k: counted[k] for k in ("TP", "FP", "FN", "TN")}
    return summary
