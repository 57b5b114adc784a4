"""What an order update from the RIS changes: the HL7 listener's `on_order_change` hook.

- cancelled, or a final result reported: queued jobs of the study stop (`cancelled`) and its
  pending deliveries are dropped (`cancelled`); nothing is drafted or sent for it again.
- otherwise, an order arriving within `hl7.order_grace_s` of the study becoming stable
  re-runs the rules with the order's facts (department, priority, reason): a rule that now
  matches gets its Job (one per study, version, profile, as always).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from radraft.core import audit
from radraft.core.db import Delivery, Draft, Job, Study, db_now
from radraft.core.settings import Settings
from radraft.core.types import StudyStable
from radraft.dicom_node.rules import RulesWatcher, facts_for_study
from radraft.ehr.apply import OrderChange
from radraft.worker.enqueue import Enqueue, WakeUp
from radraft.worker.jobs import closed_order, create_jobs
from radraft.worker.prefetch import request_prefetch

log = logging.getLogger(__name__)

OnOrderChange = Callable[[str, str], None]


def _studies(session: Session, accession: str, study_uid: str) -> list[Study]:
    conditions = []
    if accession:
        conditions.append(Study.accession == accession)
    if study_uid:
        conditions.append(Study.study_uid == study_uid)
    if not conditions:
        return []
    return list(session.scalars(select(Study).where(or_(*conditions))).all())


def _stop_study(session: Session, study: Study) -> None:
    now = db_now(session)
    jobs = session.execute(update(Job).where(
        Job.study_uid == study.study_uid, Job.state == "queued",
    ).values(state="cancelled", finished_at=now))
    drafts = select(Draft.id).where(Draft.study_uid == study.study_uid)
    deliveries = session.execute(update(Delivery).where(
        Delivery.draft_id.in_(drafts), Delivery.state == "pending",
    ).values(state="cancelled", next_attempt_at=None,
             last_error="order cancelled or final at the RIS"))
    audit.record(session, "order.closed", study_uid=study.study_uid,
                 jobs_cancelled=getattr(jobs, "rowcount", 0),
                 deliveries_cancelled=getattr(deliveries, "rowcount", 0))


def order_changed(
    session: Session, settings: Settings, rules: RulesWatcher, *, accession: str,
    study_uid: str = "",
) -> list[WakeUp]:
    """Apply an order update (already stored) to jobs and outbox; returns wake-ups to publish
    after the caller commits."""
    wakes: list[WakeUp] = []
    now = db_now(session)
    for study in _studies(session, accession, study_uid):
        if closed_order(session, study.study_uid, study.accession):
            _stop_study(session, study)
            continue
        if study.announced_version is None or study.announced_at is None:
            continue  # not stable yet: the rules will see the order when it is
        if now - study.announced_at > timedelta(seconds=settings.hl7.order_grace_s):
            continue  # too late to change what was decided
        outcomes = rules.current().decide(facts_for_study(session, study.study_uid, now=now))
        stable = StudyStable(
            study.study_uid, study.announced_version, study.instance_count, study.image_count,
            study.calling_aet, study.first_received_at, study.last_received_at,
        )
        wakes += create_jobs(session, settings, stable, outcomes)
    return wakes


def make_on_order_change(
    settings: Settings, sessions: sessionmaker[Session], rules: RulesWatcher, enqueue: Enqueue,
) -> OnOrderChange:
    """The listener's hook: `on_order_change(accession, study_uid)` after it stored an order."""

    def on_order_change(accession: str, study_uid: str = "") -> None:
        try:
            with sessions() as session:
                wakes = order_changed(session, settings, rules, accession=accession,
                                      study_uid=study_uid)
                session.commit()
        except IntegrityError:
            log.info("order %s: jobs created elsewhere", accession)
            return
        for wake in wakes:
            enqueue(wake)

    return on_order_change


def celery_on_order_change(
    settings: Settings, sessions: sessionmaker[Session], rules: RulesWatcher,
) -> Callable[[OrderChange], None]:
    """The hook `radraft serve` gives the HL7 listener: `make_on_order_change` publishing on
    the configured broker, fed with the listener's `OrderChange`."""
    from radraft.worker.celery_app import make_celery  # the Celery app only where it is used
    from radraft.worker.enqueue import celery_enqueue
    from radraft.worker.quality_tasks import score_publisher

    app = make_celery(settings)
    enqueue = celery_enqueue(app)
    hook = make_on_order_change(settings, sessions, rules, enqueue)
    score = score_publisher(app)

    def on_order_change(change: OrderChange) -> None:
        hook(change.accession, change.study_uid)
        if change.status == "final":
            score(change.accession)  # pair its drafts with the final report (issue 21)
        with sessions() as session:  # the order's priors, before its study (prefetch.py)
            wake = request_prefetch(session, settings, change.accession)
            session.commit()
        if wake is not None:
            enqueue(wake)

    return on_order_change
