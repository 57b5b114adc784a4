"""Text overlap of a draft with the final report: BLEU-4 and chrF (sacrebleu), ROUGE-L
(rouge-score), each on the findings and on the impression separately.

All three are returned on a 0–1 scale (sacrebleu's 0–100 divided by 100) so the console
shows one scale. Overlap is not correctness: "no pneumothorax" and "pneumothorax" share
most of their words. The libraries are imported on first use (they are the `quality`
extra; the node and listener never load them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

# Section headings of a signed report (the RIS's free text); the findings run from their
# heading to the next one, the impression likewise (also "CONCLUSION", "SUMMARY").
# A heading opens a line or follows a full stop ("... no bleed. IMPRESSION: normal").
_HEADING = re.compile(
    r"(?im)(?:^|(?<=\.))[ \t]*(findings|impression|conclusions?|summary|opinion|clinical history|"
    r"history|indication|reason for (?:exam|study)|comparison|technique|procedure|"
    r"recommendations?|addendum)[ \t]*:")
IMPRESSION_NAMES = frozenset({"impression", "conclusion", "conclusions", "summary", "opinion"})
TEXT_SCORES = ("bleu4", "rougeL", "chrf")


@dataclass(frozen=True)
class Sections:
    findings: str
    impression: str


def sections(text: str) -> Sections:
    """The findings and impression of a report's text. Without headings the whole text
    counts as findings (and there is no impression)."""
    marks = list(_HEADING.finditer(text))
    if not marks:
        return Sections(text.strip(), "")
    findings: list[str] = []
    impression: list[str] = []
    for index, mark in enumerate(marks):
        end = marks[index + 1].start() if index + 1 < len(marks) else len(text)
        body = text[mark.end():end].strip()
        name = mark.group(1).lower()
        if name == "findings":
            findings.append(body)
        elif name in IMPRESSION_NAMES:
            impression.append(body)
    return Sections("\n".join(findings).strip(), "\n".join(impression).strip())


def draft_sections(report: dict[str, Any]) -> Sections:
    """The findings and impression of a stored DraftReport (its JSON)."""
    findings = " ".join(str(f.get("text", "")) for f in report.get("findings", []))
    items = sorted(report.get("impression", []), key=lambda i: int(i.get("rank", 0)))
    impression = " ".join(str(i.get("text", "")) for i in items)
    return Sections(findings.strip(), impression.strip())


@cache
def _rouge() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def bleu4(hypothesis: str, reference: str) -> float:
    """Sentence BLEU-4 (sacrebleu defaults: 13a tokenizer, exponential smoothing), 0–1."""
    from sacrebleu.metrics.bleu import BLEU

    return float(BLEU(effective_order=True).sentence_score(hypothesis, [reference]).score) / 100


def chrf(hypothesis: str, reference: str) -> float:
    """chrF (character n-gram F-score, n=6, beta=2; sacrebleu), 0–1."""
    from sacrebleu.metrics.chrf import CHRF

    return float(CHRF().sentence_score(hypothesis, [reference]).score) / 100


def rouge_l(hypothesis: str, reference: str) -> float:
    """ROUGE-L F-measure (rouge-score, Porter stemmer), 0–1."""
    return float(_rouge().score(reference, hypothesis)["rougeL"].fmeasure)


def overlap_scores(draft: Sections, final: Sections) -> dict[str, float]:
    """`<score>.<section>` for each section the final report has (an empty reference
    section is left out, not scored as zero)."""
    scores: dict[str, float] = {}
    for section in ("findings", "impression"):
        hypothesis, reference = getattr(draft, section), getattr(final, section)
        if not reference:
            continue
        scores[f"bleu4.{section}"] = bleu4(hypothesis, reference)
        scores[f"rougeL.{section}"] = rouge_l(hypothesis, reference)
        scores[f"chrf.{section}"] = chrf(hypothesis, reference)
    return scores
