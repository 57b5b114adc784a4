"""Pairing drafts with final reports and storing the pair's scores (issue 21).

A final report (ORU with OBR-25 F, stored as PriorReport by the HL7 listener) and every
draft of a study with that accession make pairs, keyed by (accession, draft id), scored
once. Two paths reach `score_accession`: the `radraft.score` task, enqueued by the HL7
listener's hook after the final report's commit (never inside the ACK's critical
section), and the pairing sweep in `radraft worker`, which catches what the task missed:
a draft stored after its final report arrived ("late draft"), a lost wake-up, a final
report with no order. Report text is read from the database and never logged.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from functools import cache
from pathlib import Path

from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import (
    Delivery,
    Draft,
    Hl7Message,
    Job,
    PriorReport,
    QualityPair,
    QualityScore,
    Study,
    db_now,
)
from radraft.core.settings import Settings
from radraft.reporting.quality.extract import Lexicon, load_lexicon
from radraft.reporting.quality.pair import Moments, PairScores, score_pair

log = logging.getLogger(__name__)

SCORE_TASK = "radraft.score"
BATCH = 200


@cache
def _lexicon(path: Path | None) -> Lexicon:
    return load_lexicon(path)


def site_lexicon(settings: Settings) -> Lexicon:
    return _lexicon(settings.quality.lexicon)


def final_report(session: Session, accession: str) -> PriorReport | None:
    """The newest final (F) report of `accession`."""
    return session.scalars(select(PriorReport).where(
        PriorReport.accession == accession, PriorReport.result_status == "F",
    ).order_by(PriorReport.id.desc()).limit(1)).first()


def _alert_at(session: Session, draft_id: int) -> datetime | None:
    return session.scalar(select(func.min(Delivery.delivered_at)).where(
        Delivery.draft_id == draft_id, Delivery.payload_kind == "alert",
        Delivery.state == "delivered"))


def _store(session: Session, accession: str, draft: Draft, study: Study, job: Job,
           report: PriorReport, scored: PairScores, moments: Moments) -> QualityPair:
    pair = QualityPair(
        accession=accession, draft_id=draft.id, report_id=report.id,
        study_uid=draft.study_uid, profile=draft.profile,
        modality=(study.modalities or "").split("\\")[0][:16], rule_name=job.rule_name,
        mode=draft.mode, draft_triage=draft.triage_level, final_critical=scored.final_critical,
        triage=scored.triage, draft_labels=scored.draft_labels,
        final_labels=scored.final_labels, study_complete_at=moments.study_complete,
        draft_ready_at=moments.draft_ready, alert_at=moments.alert_sent,
        final_signed_at=moments.final_signed, scored_at=db_now(session),
    )
    session.add(pair)
    session.flush()
    for name, value in sorted(scored.scores.items()):
        group = name.split(".")[0]
        session.add(QualityScore(pair_id=pair.id, accession=accession, draft_id=draft.id,
                                 name=name, value=float(value),
                                 counts=scored.counts.get(group, {})))
    # The triage outcome as a score too (1: the alert decision matched the final report).
    session.add(QualityScore(pair_id=pair.id, accession=accession, draft_id=draft.id,
                             name="triage.correct",
                             value=1.0 if scored.triage in ("TP", "TN") else 0.0,
                             counts=scored.counts.get("triage", {})))
    return pair


def score_accession(session: Session, settings: Settings, accession: str) -> int:
    """Pair and score every unscored draft of `accession` with its final report (commits);
    returns the number of new pairs."""
    if not accession:
        return 0
    report = final_report(session, accession)
    if report is None:
        return 0
    rows = session.execute(
        select(Draft, Study, Job).join(Study, Study.study_uid == Draft.study_uid)
        .join(Job, Job.id == Draft.job_id)
        .where(Study.accession == accession,
               ~exists().where(QualityPair.draft_id == Draft.id,
                               QualityPair.accession == accession))
        .order_by(Draft.id)).all()
    if not rows:
        return 0
    signed = session.scalar(select(Hl7Message.received_at)
                            .where(Hl7Message.id == report.message_id))
    lexicon = site_lexicon(settings)
    made = 0
    for draft, study, job in rows:
        moments = Moments(study_complete=job.created_at, draft_ready=draft.created_at,
                          alert_sent=_alert_at(session, draft.id), final_signed=signed)
        scored = score_pair(draft.report, report.text, lexicon=lexicon, moments=moments)
        try:
            with session.begin_nested():
                _store(session, accession, draft, study, job, report, scored, moments)
        except IntegrityError:
            continue  # scored by another worker meanwhile
        made += 1
        log.info("accession %s: draft %d scored (%s, triage %s)", accession, draft.id,
                 draft.mode, scored.triage)
    session.commit()
    return made


def unscored_accessions(session: Session, limit: int = BATCH) -> list[str]:
    """Accessions with a final report and at least one draft not paired yet."""
    query = (select(Study.accession).distinct()
             .join(Draft, Draft.study_uid == Study.study_uid)
             .join(PriorReport, PriorReport.accession == Study.accession)
             .where(Study.accession != "", PriorReport.result_status == "F",
                    ~exists().where(QualityPair.draft_id == Draft.id))
             .limit(limit))
    return [a for a in session.scalars(query) if a]


def pair_due(sessions: sessionmaker[Session], settings: Settings) -> int:
    """One catch-up pass over every unscored pair; returns the pairs made."""
    made = 0
    with sessions() as session:
        accessions = unscored_accessions(session)
    for accession in accessions:
        with sessions() as session:
            made += score_accession(session, settings, accession)
    return made


class PairingSweep:
    """`radraft worker`'s catch-up loop: `pair_due` every `interval_s` seconds."""

    name = "quality-pairing"

    def __init__(self, settings: Settings, sessions: sessionmaker[Session],
                 interval_s: float = 60.0) -> None:
        self._settings, self._sessions, self._interval = settings, sessions, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                made = pair_due(self._sessions, self._settings)
            except (SQLAlchemyError, OSError):  # the loop outlives a database hiccup
                log.exception("pairing pass failed; retrying")
                continue
            if made:
                log.info("pairing sweep: %d pair(s) scored", made)
