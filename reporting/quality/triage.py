"""Triage: was the draft's ED alert (urgent or critical level) supported by a critical
finding in the final report?

A final report is critical when the lexicon's extractor finds one of its `critical`
findings present (or uncertain: a radiologist who raises a possible dissection wants the
ED to know) or a phrase saying a critical result was communicated. Outcomes per pair: TP
(alert, critical), FP (alert, not critical), FN (no alert, critical: a missed critical
finding), TN.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from radraft.reporting.quality.extract import Lexicon, mentions_critical_phrase
from radraft.reporting.quality.stats import Estimate, proportion

ALERT_LEVELS = frozenset({"urgent", "critical"})


def final_is_critical(labels: Mapping[str, str], text: str, lexicon: Lexicon) -> bool:
    if any(labels.get(k) in ("present", "uncertain") for k in lexicon.critical):
        return True
    return mentions_critical_phrase(text, lexicon)


def outcome(draft_level: str, critical: bool) -> str:
    alerted = draft_level in ALERT_LEVELS
    if alerted:
        return "TP" if critical else "FP"
    return "FN" if critical else "TN"


def triage_estimates(outcomes: Iterable[str]) -> dict[str, Estimate]:
    """Sensitivity, specificity, PPV and NPV of the ED alert (Wilson intervals)."""
    n = Counter(outcomes)
    tp, fp, fn, tn = n["TP"], n["FP"], n["FN"], n["TN"]
    counts = {"tp": tp, "fp": fp, "fn": fn, "tn": tn}
    return {
        "sensitivity": proportion("triage.sensitivity", tp, tp + fn, **counts),
        "specificity": proportion("triage.specificity", tn, tn + fp, **counts),
        "ppv": proportion("triage.ppv", tp, tp + fp, **counts),
        "npv": proportion("triage.npv", tn, tn + fn, **counts),
    }
