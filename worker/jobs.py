"""Jobs from stable studies: rule decisions, one Job per (study, version, profile), claims.

A message carries (job id, attempts). Claiming bumps `attempts` under that exact value, so a
duplicate message (sweeper re-send, broker redelivery) finds nothing to claim and is dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from radraft.core import audit
from radraft.core.db import Job, Order, RuleDecision, Study, db_now
from radraft.core.settings import Settings
from radraft.core.types import Priority, StudyStable
from radraft.dicom_node.completeness import study_discontinued
from radraft.dicom_node.rules import RuleOutcome, RulesWatcher, facts_for_study
from radraft.worker.enqueue import Enqueue, WakeUp

log = logging.getLogger(__name__)

CLOSED_ORDER_STATES = frozenset({"cancelled", "final"})


def closed_order(session: Session, study_uid: str, accession: str) -> Order | None:
    """The order of this study if the RIS cancelled it or reported a final result."""
    conditions = [Order.study_uid == study_uid]
    if accession:
        conditions.append(Order.accession == accession)
    order = session.scalars(
        select(Order).where(or_(*conditions)).order_by(Order.updated_at.desc())
    ).first()
    return order if order is not None and order.status in CLOSED_ORDER_STATES else None


def _record_decisions(
    session: Session, stable: StudyStable, outcomes: Sequence[RuleOutcome], now: datetime,
) -> None:
    for outcome in outcomes:
        session.add(RuleDecision(
            study_uid=stable.study_uid, version=stable.version, rule_name=outcome.rule_name,
            action=outcome.action, profile=outcome.profile,
            priority=outcome.priority.value if outcome.priority else "",
            destinations=list(outcome.destinations), reasons=list(outcome.reasons),
            decided_at=now,
        ))
        audit.record(
            session, "rules.decision", study_uid=stable.study_uid, version=stable.version,
            rule=outcome.rule_name, action=outcome.action, profile=outcome.profile,
        )


def _discontinued_filter(
    session: Session, stable: StudyStable, drafts: list[RuleOutcome],
) -> list[RuleOutcome]:
    """A study whose MPPS steps were all DISCONTINUED is drafted only by rules saying
    `on_discontinued: draft`; the others are skipped, with the CID 9300 reason audited."""
    step = study_discontinued(session, stable.study_uid)
    if step is None:
        return drafts
    kept = [o for o in drafts if o.on_discontinued == "draft"]
    for outcome in drafts:
        if outcome not in kept:
            audit.record(session, "job.skipped", study_uid=stable.study_uid,
                         version=stable.version, rule=outcome.rule_name,
                         reason="MPPS step discontinued", code=step.discontinued_code,
                         meaning=step.discontinued_meaning)
    return kept


def create_jobs(
    session: Session, settings: Settings, stable: StudyStable, outcomes: Sequence[RuleOutcome],
) -> list[WakeUp]:
    """Record the decisions and add one queued Job per "draft" outcome not known yet.

    Older queued jobs of the same study and profile are superseded by the new version.
    Returns the wake-ups to publish AFTER the caller commits.
    """
    now = db_now(session)
    known = session.scalar(select(RuleDecision.id).where(
        RuleDecision.study_uid == stable.study_uid, RuleDecision.version == stable.version,
    ))
    if known is None:
        _record_decisions(session, stable, outcomes, now)
    study = session.scalars(select(Study).where(Study.study_uid == stable.study_uid)).first()
    if any(o.action == "unmatched" for o in outcomes) and study is not None:
        study.admin_flag = "no routing rule matched"
    drafts = [o for o in outcomes if o.action == "draft"]
    drafts = _discontinued_filter(session, stable, drafts)
    if drafts and closed_order(session, stable.study_uid, study.accession if study else ""):
        audit.record(session, "job.skipped", study_uid=stable.study_uid,
                     version=stable.version, reason="order cancelled or final")
        return []
    wakes: list[WakeUp] = []
    for outcome in drafts:
        exists = session.scalar(select(Job.id).where(
            Job.study_uid == stable.study_uid, Job.version == stable.version,
            Job.profile == outcome.profile,
        ))
        if exists is not None:
            continue
        session.execute(update(Job).where(
            Job.study_uid == stable.study_uid, Job.profile == outcome.profile,
            Job.state == "queued",
        ).values(state="superseded", finished_at=now))
        priority = outcome.priority or Priority.ROUTINE
        job = Job(
            study_uid=stable.study_uid, version=stable.version, profile=outcome.profile,
            priority=priority.value, destinations=list(outcome.destinations),
            rule_name=outcome.rule_name, mode=outcome.mode, state="queued", attempts=0,
            max_attempts=settings.jobs.max_attempts, created_at=now,
            # Not re-sent by the sweeper unless the wake-up got lost on the way.
            next_attempt_at=now + timedelta(seconds=settings.jobs.redeliver_after_s),
        )
        session.add(job)
        session.flush()
        audit.record(session, "job.created", study_uid=stable.study_uid, job_id=job.id,
                     version=stable.version, profile=outcome.profile, rule=outcome.rule_name,
                     priority=priority.value, mode=outcome.mode)
        wakes.append(WakeUp("job", job.id, 0, priority))
    return wakes


def make_on_stable(
    settings: Settings, sessions: sessionmaker[Session], rules: RulesWatcher, enqueue: Enqueue,
) -> Callable[[StudyStable], None]:
    """The node's `on_stable`: decisions + Jobs in one transaction, then the wake-ups."""

    def on_stable(stable: StudyStable) -> None:
        try:
            with sessions() as session:
                facts = facts_for_study(session, stable.study_uid, now=db_now(session))
                outcomes = rules.current().decide(facts)
                wakes = create_jobs(session, settings, stable, outcomes)
                session.commit()
        except IntegrityError:
            # Another process created the same (study, version, profile): it drafts it.
            log.info("study %s version %s: jobs created elsewhere", stable.study_uid,
                     stable.version)
            return
        for wake in wakes:
            enqueue(wake)
        log.info("study %s: %d job(s) queued", stable.study_uid, len(wakes))

    return on_stable


def celery_on_stable(
    settings: Settings, sessions: sessionmaker[Session], rules: RulesWatcher,
) -> Callable[[StudyStable], None]:
    """`make_on_stable` publishing on the configured broker (what `radraft serve` runs)."""
    from radraft.worker.celery_app import make_celery  # the Celery app only where it is used
    from radraft.worker.enqueue import celery_enqueue

    return make_on_stable(settings, sessions, rules, celery_enqueue(make_celery(settings)))


def claim_job(
    session: Session, job_id: int, attempts: int, *, worker: str, lease_s: float,
) -> Job | None:
    """Take a queued job for this attempt (commits), or None if it is not ours to run."""
    now = db_now(session)
    result = session.execute(update(Job).where(
        Job.id == job_id, Job.attempts == attempts, Job.state == "queued",
    ).values(
        state="running", attempts=attempts + 1, worker=worker, started_at=now,
        lease_until=now + timedelta(seconds=lease_s), next_attempt_at=None,
    ).execution_options(synchronize_session=False))
    session.commit()
    if getattr(result, "rowcount", 0) != 1:
        return None
    return session.get(Job, job_id, populate_existing=True)
