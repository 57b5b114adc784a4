"""The Quality page's data: scored pairs in a window, summarised overall, by profile,
modality, week and rule, the worst pairs side by side, and the go-live evidence per rule."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from radraft.core.db import Draft, DraftImage, PriorReport, QualityPair, QualityScore, db_now
from radraft.core.settings import Settings
from radraft.dicom_node.rules import RuleSet
from radraft.reporting.quality.stats import MIN_PAIRS, Estimate
from radraft.reporting.quality.summary import PairRecord, Summary, summarize
from radraft.worker.quality_pairing import site_lexicon

LIMIT = 5000  # newest pairs read per page view
WORST = 8


@dataclass
class Scored:
    pair: QualityPair
    scores: dict[str, float]

    @property
    def record(self) -> PairRecord:
        return PairRecord(self.scores, self.pair.draft_labels, self.pair.final_labels,
                          self.pair.triage)


@dataclass
class RuleEvidence:
    rule: str
    mode: str  # the rule's mode in force now ("" if the rule is gone)
    n: int
    triage_sensitivity: Estimate
    triage_ppv: Estimate
    macro_f1: Estimate
    missed_critical: int
    ready: bool
    why: list[str] = field(default_factory=list)


@dataclass
class QualityView:
    since: datetime
    mode: str
    n: int
    overall: Summary
    by_profile: dict[str, Summary]
    by_modality: dict[str, Summary]
    by_week: dict[str, Summary]
    rules: list[RuleEvidence]
    worst: list[dict[str, Any]]
    min_pairs: int = MIN_PAIRS


def newest_per_accession(pairs: Sequence[QualityPair]) -> list[QualityPair]:
    """One pair per (accession, profile): the newest draft's. A study re-drafted after a
    new series is one exam, not two, in the estimates (every pair stays in the table)."""
    newest: dict[tuple[str, str], QualityPair] = {}
    for pair in pairs:
        key = (pair.accession, pair.profile)
        if key not in newest or pair.draft_id > newest[key].draft_id:
            newest[key] = pair
    return sorted(newest.values(), key=lambda p: p.id, reverse=True)


def scored_pairs(session: Session, since: datetime, mode: str = "") -> list[Scored]:
    query = select(QualityPair).where(QualityPair.scored_at >= since)
    if mode in ("live", "shadow"):
        query = query.where(QualityPair.mode == mode)
    pairs = newest_per_accession(
        session.scalars(query.order_by(QualityPair.id.desc()).limit(LIMIT)).all())
    scores: dict[int, dict[str, float]] = {p.id: {} for p in pairs}
    if pairs:
        for pair_id, name, value in session.execute(
                select(QualityScore.pair_id, QualityScore.name, QualityScore.value)
                .where(QualityScore.pair_id.in_(list(scores)))):
            scores[pair_id][name] = value
    return [Scored(p, scores[p.id]) for p in pairs]


def _grouped(items: Sequence[Scored], key: str, vocabulary: Sequence[str]
             ) -> dict[str, Summary]:
    groups: dict[str, list[PairRecord]] = {}
    for item in items:
        if key == "week":
            when = item.pair.draft_ready_at or item.pair.scored_at
            label = f"{when.isocalendar().year}-W{when.isocalendar().week:02d}"
        else:
            label = str(getattr(item.pair, key) or "?")
        groups.setdefault(label, []).append(item.record)
    return {k: summarize(v, vocabulary, findings=False) for k, v in sorted(groups.items())}


def rule_evidence(settings: Settings, rules: RuleSet, by_rule: dict[str, Summary]
                  ) -> list[RuleEvidence]:
    """Per rule: what the pairs say about moving it from shadow to live (the site's bar
    in `quality.go_live_*`; the decision and the switch stay with an admin)."""
    modes = {r.name: r.mode for r in rules.rules if r.action == "draft"}
    out = []
    for rule in sorted(set(modes) | set(by_rule)):
        summary = by_rule.get(rule)
        if summary is None:
            continue
        sens, ppv = summary.triage["sensitivity"], summary.triage["ppv"]
        f1 = summary.headline["macro_f1"]
        why = []
        if summary.n < MIN_PAIRS:
            why.append(f"too few to judge: {summary.n} of {MIN_PAIRS} pairs")
        bar_s = settings.quality.go_live_min_triage_sensitivity
        if sens.low is None or sens.low < bar_s:
            shown = "no critical finding yet" if sens.low is None else f"{sens.low:.2f}"
            why.append(f"ED alert sensitivity lower bound {shown} < {bar_s:.2f}")
        bar_f = settings.quality.go_live_min_macro_f1
        if f1.low is None or f1.low < bar_f:
            shown = "undefined" if f1.low is None else f"{f1.low:.2f}"
            why.append(f"macro-F1 lower bound {shown} < {bar_f:.2f}")
        out.append(RuleEvidence(
            rule=rule or "(no rule)", mode=modes.get(rule, ""), n=summary.n,
            triage_sensitivity=sens, triage_ppv=ppv, macro_f1=f1,
            missed_critical=summary.confusion.get("FN", 0), ready=not why, why=why))
    return out


def _worst(session: Session, items: Sequence[Scored]) -> list[dict[str, Any]]:
    ranked = sorted(items, key=lambda s: (s.scores.get("agreement.f1", 0.0),
                                          s.scores.get("rougeL.findings", 0.0)))[:WORST]
    rows = []
    for item in ranked:
        draft = session.get(Draft, item.pair.draft_id)
        report = session.get(PriorReport, item.pair.report_id)
        frames = session.scalars(select(DraftImage.frame_index).where(
            DraftImage.draft_id == item.pair.draft_id, DraftImage.kind == "frame")
            .order_by(DraftImage.frame_index).limit(4)).all()
        rows.append({
            "pair": item.pair, "scores": item.scores,
            "draft_text": draft.rendered_text if draft else "",
            "final_text": report.text if report else "",
            "frames": [f"/drafts/{item.pair.draft_id}/frames/{i}.png" for i in frames],
        })
    return rows


def quality_view(session: Session, settings: Settings, rules: RuleSet, *, mode: str = "",
                 now: datetime | None = None) -> QualityView:
    now = now or db_now(session)
    since = now - timedelta(days=settings.quality.window_days)
    items = scored_pairs(session, since, mode)
    vocabulary = site_lexicon(settings).vocabulary
    records = [i.record for i in items]
    return QualityView(
        since=since, mode=mode, n=len(items), overall=summarize(records, vocabulary),
        by_profile=_grouped(items, "profile", vocabulary),
        by_modality=_grouped(items, "modality", vocabulary),
        by_week=_grouped(items, "week", vocabulary),
        rules=rule_evidence(settings, rules, _grouped(items, "rule_name", vocabulary)),
        worst=_worst(session, items),
    )
