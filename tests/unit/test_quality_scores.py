"""The quality scores against their libraries and published formulas (issue 21)."""

from __future__ import annotations

import numpy as np
import pytest
import sacrebleu
from rouge_score import rouge_scorer

from radraft.reporting.quality.agreement import (
    confusion,
    crg,
    crg_of,
    macro_f1_of,
    matrices,
    per_finding,
)
from radraft.reporting.quality.pair import Moments, score_pair
from radraft.reporting.quality.stats import (
    MIN_PAIRS,
    mean_estimate,
    proportion,
    wilson,
)
from radraft.reporting.quality.summary import PairRecord, summarize
from radraft.reporting.quality.text import bleu4, chrf, draft_sections, rouge_l, sections
from radraft.reporting.quality.triage import outcome, triage_estimates

PAIRS = [
    ("There is a small right apical pneumothorax.",
     "Small right apical pneumothorax is present."),
    ("No acute intracranial hemorrhage. No mass effect.",
     "No acute intracranial hemorrhage, mass effect or midline shift."),
    ("Acute appendicitis without abscess.", "Findings consistent with acute appendicitis."),
    ("completely unrelated words here", "Normal CT of the abdomen and pelvis."),
]


@pytest.mark.parametrize(("hyp", "ref"), PAIRS)
def test_bleu_and_chrf_equal_sacrebleu(hyp: str, ref: str) -> None:
    assert bleu4(hyp, ref) == pytest.approx(sacrebleu.sentence_bleu(hyp, [ref]).score / 100)
    assert chrf(hyp, ref) == pytest.approx(sacrebleu.sentence_chrf(hyp, [ref]).score / 100)


@pytest.mark.parametrize(("hyp", "ref"), PAIRS)
def test_rouge_l_equals_rouge_score(hyp: str, ref: str) -> None:
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    assert rouge_l(hyp, ref) == pytest.approx(scorer.score(ref, hyp)["rougeL"].fmeasure)


def test_rouge_l_by_hand() -> None:
    # LCS("small left pneumothorax", "small right pneumothorax") = 2 words of 3 and 3:
    # P = R = 2/3, F = 2/3.
    assert rouge_l("small left pneumothorax", "small right pneumothorax") == pytest.approx(2 / 3)
    assert bleu4("identical text of five words", "identical text of five words") == \
        pytest.approx(1.0)


def test_crg_equals_vlm3d_formula_on_hand_counts() -> None:
    # 18 labels x 10 exams: X = 180; A = 20 positives; TP 12, FN 8, FP 5.
    # r = (180 - 20) / 40 = 4; U = 80; s = 4*12 - 4*8 - 5 = 11; CRG = 80 / (160 - 11).
    assert crg(12, 8, 5, 18, 10, 20) == pytest.approx(80 / 149)
    # The same counts through label matrices.
    gold = np.zeros((10, 18), dtype=bool)
    pred = np.zeros((10, 18), dtype=bool)
    gold.flat[:20] = True
    pred.flat[:12] = True  # 12 TP, 8 FN
    pred.flat[100:105] = True  # 5 FP
    c = confusion(pred, gold)
    assert (c.tp, c.fn, c.fp) == (12, 8, 5)
    assert crg_of(pred, gold) == pytest.approx(80 / 149)
    # Perfect prediction: s = r*A, CRG = U / (2U - U) = 1; no positives: undefined.
    assert crg_of(gold, gold) == pytest.approx(1.0)
    assert crg(0, 0, 0, 18, 10, 0) is None


def test_wilson_matches_newcombe_1998() -> None:
    # Newcombe, Stat Med 1998;17:857-872, table I (method 3, score interval).
    for successes, n, low, high in ((81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605),
                                    (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718)):
        got = wilson(successes, n)
        assert got == pytest.approx((low, high), abs=5e-5)
    with pytest.raises(ValueError):
        wilson(3, 2)


def test_bootstrap_is_seeded_and_too_few_is_said() -> None:
    values = [0.1, 0.5, 0.3, 0.9, 0.2]
    first, second = mean_estimate("m", values), mean_estimate("m", values)
    assert (first.low, first.high) == (second.low, second.high)
    assert first.low is not None and first.high is not None
    assert first.low <= first.value <= first.high  # type: ignore[operator]
    assert first.verdict == "too few to judge"
    enough = proportion("p", 20, MIN_PAIRS)
    assert enough.verdict == "" and enough.n == MIN_PAIRS
    assert proportion("p", 0, 0).value is None


def test_per_finding_and_macro_f1() -> None:
    vocabulary = ["A", "B"]
    drafts = [{"A": "present"}, {"A": "absent", "B": "uncertain"}, {}]
    finals = [{"A": "present"}, {"A": "present"}, {"B": "present"}]
    pred, gold = matrices(drafts, finals, vocabulary)
    table = per_finding(pred, gold, vocabulary)
    # A: TP 1, FN 1 -> sensitivity 1/2, F1 2/3; B: TP 0, FP 1, FN 1 -> F1 0.
    assert table["A"]["sensitivity"].value == pytest.approx(0.5)
    assert table["A"]["f1"].value == pytest.approx(2 / 3)
    f1 = table["A"]["f1"]
    assert f1.low is not None and f1.high is not None and f1.low <= 2 / 3 <= f1.high
    assert per_finding(pred, gold, vocabulary)["A"]["f1"].low == f1.low  # seeded
    assert table["B"]["f1"].value == pytest.approx(0.0)
    assert macro_f1_of(pred, gold) == pytest.approx(1 / 3)
    # Uncertain as negative: B's draft positive goes, F1 of B becomes 0 still (no TP).
    pred_strict, _ = matrices(drafts, finals, vocabulary, uncertain_positive=False)
    assert not pred_strict[1, 1]


def test_triage_outcomes_and_estimates() -> None:
    assert [outcome("critical", True), outcome("urgent", False), outcome("routine", True),
            outcome("routine", False)] == ["TP", "FP", "FN", "TN"]
    est = triage_estimates(["TP"] * 8 + ["FN"] * 2 + ["TN"] * 85 + ["FP"] * 5)
    assert est["sensitivity"].value == pytest.approx(0.8)
    assert est["ppv"].value == pytest.approx(8 / 13)
    assert est["npv"].value == pytest.approx(85 / 87)
    assert est["sensitivity"].counts == {"tp": 8, "fp": 5, "fn": 2, "tn": 85}


def test_a_pair_end_to_end() -> None:
    from datetime import UTC, datetime, timedelta

    report = {"findings": [{"text": "Small right pneumothorax."},
                           {"text": "No pleural effusion."}],
              "impression": [{"rank": 1, "text": "Right pneumothorax."}],
              "triage": {"level": "urgent"}}
    final = ("INDICATION: trauma, rule out fracture.\nFINDINGS: Small right apical "
             "pneumothorax. Small left pleural effusion.\nIMPRESSION: Pneumothorax.")
    t0 = datetime(2026, 12, 6, tzinfo=UTC)
    scored = score_pair(report, final, moments=Moments(
        study_complete=t0, draft_ready=t0 + timedelta(seconds=90),
        final_signed=t0 + timedelta(hours=2)))
    assert scored.final_labels == {"SCT:36118008": "present", "SCT:60046008": "present"}
    assert scored.draft_labels == {"SCT:36118008": "present", "SCT:60046008": "absent"}
    assert "SCT:125605004" not in scored.final_labels  # the indication asserts nothing
    assert scored.triage == "TP" and scored.final_critical
    assert scored.scores["time.draft_s"] == 90
    assert scored.scores["time.lead_s"] == 7110
    assert scored.scores["agreement.f1"] == pytest.approx(2 / 3)
    assert sections(final).impression == "Pneumothorax."
    inline = sections("FINDINGS: No bleed. IMPRESSION: Normal. Findings of note: none")
    assert (inline.findings, inline.impression) == ("No bleed.", "Normal. Findings of note: none")
    assert draft_sections(report).findings == "Small right pneumothorax. No pleural effusion."
    summary = summarize([PairRecord(scored.scores, scored.draft_labels, scored.final_labels,
                                    scored.triage)] * 3, ["SCT:36118008", "SCT:60046008"])
    assert summary.headline["crg"].verdict == "too few to judge"
    assert summary.confusion == {"TP": 3, "FP": 0, "FN": 0, "TN": 0}
