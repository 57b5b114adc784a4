"""Clinical agreement of drafts with final reports over a finding vocabulary.

Each pair contributes, per finding, the draft's label and the final report's (present,
uncertain, absent, or not mentioned). Binarised for counting: present is positive, and so
is uncertain unless `uncertain_positive=False` (a hedged finding still prompts action —
CheXpert's "U-ones"); absent and not mentioned are negative.

CRG follows the VLM3D challenge's `crg_score.py` (forithmus/VLM3D-Dockers,
ct_challenges/reportgen_evaluation): with X = findings x exams and A = positives in the
ground truth, r = (X - A) / 2A, U = (X - A) / 2, s = r·TP - r·FN - FP, CRG = U / (2U - s)
(0 when the denominator is 0; undefined when A = 0).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from radraft.reporting.quality.stats import BOOTSTRAP_REPS, SEED, Estimate, proportion

Labels = Mapping[str, str]  # finding code key -> "present" | "absent" | "uncertain"


@dataclass(frozen=True)
class Confusion:
    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def f1(self) -> float | None:
        denominator = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denominator if denominator else None


def positive(state: str | None, *, uncertain_positive: bool = True) -> bool:
    return state == "present" or (uncertain_positive and state == "uncertain")


def matrices(
    drafts: Sequence[Labels], finals: Sequence[Labels], vocabulary: Sequence[str], *,
    uncertain_positive: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (pairs x findings) matrices: the draft's positives, the final's positives."""
    def row(labels: Labels) -> list[bool]:
        return [positive(labels.get(k), uncertain_positive=uncertain_positive)
                for k in vocabulary]

    shape = (len(drafts), len(vocabulary))
    pred = np.array([row(d) for d in drafts], dtype=bool).reshape(shape)
    gold = np.array([row(f) for f in finals], dtype=bool).reshape(shape)
    return pred, gold


def confusion(pred: np.ndarray, gold: np.ndarray) -> Confusion:
    return Confusion(int((pred & gold).sum()), int((pred & ~gold).sum()),
                     int((~pred & gold).sum()), int((~pred & ~gold).sum()))


def crg(tp: int, fn: int, fp: int, findings: int, exams: int, positives: int) -> float | None:
    """The CRG score from totals (VLM3D's formula; None when the truth has no positive)."""
    x = findings * exams
    a = positives
    if a == 0:
        return None
    r = (x - a) / (2 * a)
    u = (x - a) / 2
    s = r * tp - r * fn - fp
    return u / (2 * u - s) if (2 * u - s) != 0 else 0.0


def crg_of(pred: np.ndarray, gold: np.ndarray) -> float | None:
    c = confusion(pred, gold)
    return crg(c.tp, c.fn, c.fp, pred.shape[1], pred.shape[0], int(gold.sum()))


def macro_f1_of(pred: np.ndarray, gold: np.ndarray) -> float | None:
    """The mean F1 over the findings that occur (positive in the draft or the final)."""
    tp = (pred & gold).sum(axis=0)
    fp = (pred & ~gold).sum(axis=0)
    fn = (~pred & gold).sum(axis=0)
    denominator = 2 * tp + fp + fn
    occurring = denominator > 0
    if not occurring.any():
        return None
    return float((2 * tp[occurring] / denominator[occurring]).mean())


def _bootstrap_rows(
    pred: np.ndarray, gold: np.ndarray, statistic: object,
) -> tuple[float, float] | None:
    if pred.shape[0] < 2:
        return None
    rng = np.random.default_rng(SEED)
    values = []
    for _ in range(BOOTSTRAP_REPS // 2):
        rows = rng.integers(0, pred.shape[0], pred.shape[0])
        value = statistic(pred[rows], gold[rows])  # type: ignore[operator]
        if value is not None:
            values.append(value)
    if not values:
        return None
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def corpus_estimate(name: str, pred: np.ndarray, gold: np.ndarray) -> Estimate:
    """macro-F1 or CRG over all pairs, with a bootstrap interval over pairs."""
    statistic = {"macro_f1": macro_f1_of, "crg": crg_of}[name]
    c = confusion(pred, gold)
    counts = {"tp": c.tp, "fp": c.fp, "fn": c.fn, "tn": c.tn, "findings": pred.shape[1]}
    value = statistic(pred, gold) if pred.size else None
    if value is None:
        return Estimate(name, None, pred.shape[0], method="bootstrap", counts=counts)
    interval = _bootstrap_rows(pred, gold, statistic)
    low, high = interval if interval else (None, None)
    return Estimate(name, value, pred.shape[0], low, high, "bootstrap", counts)


def _f1_columns(pred: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """F1 of every column (NaN where a finding occurs in neither text)."""
    tp = (pred & gold).sum(axis=0)
    denominator = 2 * tp + (pred & ~gold).sum(axis=0) + (~pred & gold).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), np.nan)


def per_finding(
    pred: np.ndarray, gold: np.ndarray, vocabulary: Sequence[str],
) -> dict[str, dict[str, Estimate]]:
    """finding -> sensitivity and specificity (Wilson) and F1 (bootstrap over pairs; one
    resampling of the rows serves every finding)."""
    n = pred.shape[0]
    intervals = np.full((len(vocabulary), 2), np.nan)
    if n >= 2:
        rng = np.random.default_rng(SEED)
        draws = np.array([_f1_columns(pred[rows], gold[rows]) for rows in
                          (rng.integers(0, n, n) for _ in range(BOOTSTRAP_REPS // 2))])
        for column in range(len(vocabulary)):
            values = draws[:, column][~np.isnan(draws[:, column])]
            if values.size:
                intervals[column] = np.percentile(values, [2.5, 97.5])
    table: dict[str, dict[str, Estimate]] = {}
    for column, key in enumerate(vocabulary):
        c = confusion(pred[:, column:column + 1], gold[:, column:column + 1])
        counts = {"tp": c.tp, "fp": c.fp, "fn": c.fn, "tn": c.tn}
        f1 = c.f1
        low, high = (None, None) if f1 is None or np.isnan(intervals[column, 0]) else (
            float(intervals[column, 0]), float(intervals[column, 1]))
        table[key] = {
            "sensitivity": proportion("sensitivity", c.tp, c.tp + c.fn, **counts),
            "specificity": proportion("specificity", c.tn, c.tn + c.fp, **counts),
            "f1": Estimate("f1", f1, n, low, high, "bootstrap", counts),
        }
    return table
