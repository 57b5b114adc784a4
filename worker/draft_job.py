"""The draft task's database side: claim, gather, run the pipeline, then ONE transaction
with the Draft row, its outbox rows and the audit event."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from radraft.core import audit
from radraft.core.db import Delivery, Draft, Job, Order, Study, db_now
from radraft.core.errors import (
    ConfigError,
    FrameError,
    OutputBuildError,
    RadraftError,
)
from radraft.core.settings import Settings
from radraft.reporting.sr import JobKey
from radraft.worker.backoff import next_attempt
from radraft.worker.enqueue import Enqueue, WakeUp
from radraft.worker.gather import local_priors, pacs_priors, study_folder
from radraft.worker.jobs import claim_job, closed_order
from radraft.worker.links import Links
from radraft.worker.outbox import add_deliveries
from radraft.worker.pipeline import DraftProduct, DraftRequest, predecessor_ref, run_draft

log = logging.getLogger(__name__)

# Properties of the study or the configuration: the job fails at once, for an admin. Other
# radraft errors (a model server restarting, a PACS busy) retry with back-off up to the cap.
FINAL: tuple[type[Exception], ...] = (FrameError, OutputBuildError, ConfigError)

CONTEXT_BUDGET_CHARS = 4000


def job_key(job: Job) -> JobKey:
    return (job.study_uid, job.version, job.profile)


@dataclass(frozen=True, slots=True)
class RequestView:
    """The order a draft answers, as reporting.sr's RequestInfo (no names, ids only)."""

    accession: str
    placer_order_number: str = ""
    filler_order_number: str = ""
    requested_procedure_id: str = ""
    procedure_code: str = ""
    procedure_coding_system: str = ""
    procedure_text: str = ""
    patient_id: str = ""
    patient_id_issuer: str = ""
    priority: str = "routine"


def request_view(order: Order | None, study: Study) -> RequestView | None:
    if order is None:
        return RequestView(accession=study.accession, patient_id=study.patient_id,
                           patient_id_issuer=study.issuer_of_patient_id) \
            if study.accession else None
    return RequestView(
        accession=order.accession, placer_order_number=order.placer_order_number,
        filler_order_number=order.filler_order_number,
        requested_procedure_id=order.requested_procedure_id,
        procedure_code=order.procedure_code, procedure_text=order.procedure_text,
        patient_id=study.patient_id, patient_id_issuer=study.issuer_of_patient_id,
        priority=order.priority,
    )


def _order(session: Session, study: Study) -> Order | None:
    query = select(Order).where(Order.study_uid == study.study_uid)
    if study.accession:
        query = select(Order).where(
            (Order.study_uid == study.study_uid) | (Order.accession == study.accession)
        )
    return session.scalars(query.order_by(Order.updated_at.desc())).first()


def _predecessor(session: Session, job: Job) -> Draft | None:
    return session.scalars(select(Draft).where(
        Draft.study_uid == job.study_uid, Draft.profile == job.profile, Draft.job_id != job.id,
    ).order_by(Draft.created_at.desc(), Draft.id.desc())).first()


def _destinations(settings: Settings, job: Job) -> list[str]:
    names = list(job.destinations) or list(settings.destinations)
    profile = settings.profiles[job.profile]
    if not profile.send_hl7:
        names = [n for n in names if settings.destinations[n].kind != "hl7"]
    return [n for n in names if n in settings.destinations]


def _store(
    session: Session, settings: Settings, job: Job, product: DraftProduct,
    predecessor: Draft | None,
) -> list[Delivery]:
    now = db_now(session)
    draft = Draft(
        job_id=job.id, study_uid=job.study_uid, version=job.version, profile=job.profile,
        report=product.report.model_dump(mode="json"), rendered_text=product.rendered_text,
        rendered_html=product.rendered_html, triage_level=product.triage_level,
        sr_uid=product.uids.get("sr", ""), tid1500_uid=product.uids.get("tid1500", ""),
        kos_uid=product.uids.get("kos", ""),
        predecessor_id=predecessor.id if predecessor else None, model_name=product.model_name,
        prompt_sha256=product.prompt_sha256, frame_count=product.frame_count,
        segments=product.segments, created_at=now,
    )
    session.add(draft)
    rows = add_deliveries(session, settings, draft, product.items, _destinations(settings, job),
                          now)
    job.state, job.finished_at, job.lease_until = "done", now, None
    job.timings = product.timings
    job.last_error = ""
    audit.record(
        session, "draft.created", study_uid=job.study_uid, job_id=job.id, version=job.version,
        profile=job.profile, rule=job.rule_name, model=product.model_name,
        prompt_sha256=product.prompt_sha256, frames=product.frame_count,
        triage=product.triage_level, predecessor=predecessor.sr_uid if predecessor else "",
        deliveries=len(rows),
    )
    return rows


def _fail(session: Session, settings: Settings, job: Job, exc: Exception, *, final: bool) -> str:
    now = db_now(session)
    job.last_error = f"{type(exc).__name__}: {exc}"
    job.lease_until = None
    if final or job.attempts >= job.max_attempts:
        job.state, job.finished_at = "failed", now
        audit.record(session, "job.failed", study_uid=job.study_uid, job_id=job.id,
                     error=job.last_error, attempts=job.attempts)
    else:
        job.state = "queued"
        job.next_attempt_at = next_attempt(
            now, job.attempts, base_s=settings.delivery.base_backoff_s,
            cap_s=settings.delivery.max_backoff_s,
        )
    session.commit()
    log.warning("job %d (%s): %s -> %s", job.id, job.study_uid, job.last_error, job.state)
    return job.state


def draft_job(
    sessions: sessionmaker[Session], settings: Settings, links: Links, backend: Any,
    job_id: int, attempts: int, enqueue: Enqueue,
    progress: Callable[[str], None] | None = None,
) -> str:
    """Run job `job_id` for attempt `attempts`; returns the job's new state."""
    with sessions() as session:
        job = claim_job(session, job_id, attempts, worker=socket.gethostname(),
                        lease_s=settings.jobs.time_limit_s)
        if job is None:
            return "not-due"
        study = session.scalars(select(Study).where(Study.study_uid == job.study_uid)).one()
        if closed_order(session, job.study_uid, study.accession):
            job.state, job.finished_at = "cancelled", db_now(session)
            audit.record(session, "job.cancelled", study_uid=job.study_uid, job_id=job.id,
                         reason="order cancelled or final at the RIS")
            session.commit()
            return job.state
        try:
            profile = settings.profiles[job.profile]
            folder = study_folder(session, settings, job.study_uid)
            priors = local_priors(session, settings, study, profile)
            if len(priors) < profile.max_priors:
                priors += pacs_priors(settings, study, profile)[: profile.max_priors - len(priors)]
            context = ""
            if links.clinical_context is not None:
                ctx = links.clinical_context(session, job.study_uid, profile=profile,
                                             now=db_now(session))
                context = str(ctx.as_text(CONTEXT_BUDGET_CHARS))
            predecessor = _predecessor(session, job)
            request = DraftRequest(
                study=folder, priors=priors, profile_name=job.profile, profile=profile,
                job_key=job_key(job), context_text=context,
                predecessor=predecessor_ref(settings, job_key(job), predecessor.sr_uid)
                if predecessor and predecessor.sr_uid else None,
                order=request_view(_order(session, study), study), progress=progress,
            )
            product = run_draft(settings, links, request, backend)
        except FINAL as exc:
            return _fail(session, settings, job, exc, final=True)
        except (RadraftError, OSError) as exc:  # ModelError, DeliveryError, a disk hiccup
            return _fail(session, settings, job, exc, final=False)
        rows = _store(session, settings, job, product, predecessor)
        session.commit()
        wakes = [WakeUp("delivery", row.id, 0) for row in rows]
    for wake in wakes:
        enqueue(wake)
    log.info("job %d (%s): drafted, %d deliveries", job_id, job.study_uid, len(wakes))
    return "done"
