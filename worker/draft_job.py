"""The draft task's database side: claim, gather, run the pipeline, then ONE transaction
with the Draft row, its outbox rows and the audit event."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from radraft.core import audit
from radraft.core.db import Delivery, Draft, DraftImage, Job, Order, Patient, Study, db_now
from radraft.core.errors import (
    ConfigError,
    FrameError,
    OutputBuildError,
    RadraftError,
)
from radraft.core.settings import Hl7Destination, Settings
from radraft.core.types import Priority
from radraft.ehr.outbound import OrderInfo, PatientInfo
from radraft.reporting.sr import JobKey
from radraft.worker.backoff import next_attempt
from radraft.worker.enqueue import Enqueue, WakeUp
from radraft.worker.gather import (
    bounded_pacs_priors,
    evidence_from_index,
    local_priors,
    study_folder,
)
from radraft.worker.heartbeat import worker_identity
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


def order_info(session: Session, order: Order | None, study: Study) -> OrderInfo | None:
    """The order a draft answers (ids for the SR and HL7); None without an accession."""
    if order is None:
        if not study.accession:
            return None
        return OrderInfo(accession=study.accession, patient_id=study.patient_id,
                         patient_id_issuer=study.issuer_of_patient_id,
                         modality=study.modalities.split("\\")[0])
    return OrderInfo(
        accession=order.accession, placer_order_number=order.placer_order_number,
        filler_order_number=order.filler_order_number,
        requested_procedure_id=order.requested_procedure_id,
        procedure_code=order.procedure_code, procedure_text=order.procedure_text,
        patient_id=study.patient_id, patient_id_issuer=study.issuer_of_patient_id,
        priority=Priority(order.priority) if order.priority in Priority.__members__.values()
        else Priority.ROUTINE,
        modality=study.modalities.split("\\")[0], location=order.location,
        ordering_provider=order.ordering_provider,
    )


def patient_info(
    session: Session, order: Order | None, study: Study,
) -> PatientInfo | None:
    """PID content from the EHR store (PHI: it goes into the HL7 message, never a log)."""
    patient = session.get(Patient, order.patient_ref) if order and order.patient_ref else None
    if patient is None and study.patient_id:
        patient = session.scalars(select(Patient).where(
            Patient.patient_id == study.patient_id)).first()
    if patient is None:
        return None  # the pipeline takes PID content from the study's DICOM headers
    family, _, given = patient.name.partition("^")
    return PatientInfo(patient_id=patient.patient_id, assigning_authority=patient.issuer,
                       family_name=family, given_name=given.split("^")[0],
                       birth_date=patient.birth_date, sex=patient.sex or "U")


def _order(session: Session, study: Study) -> Order | None:
    conditions = [Order.study_uid == study.study_uid]
    if study.accession:
        conditions.append(Order.accession == study.accession)
    return session.scalars(
        select(Order).where(or_(*conditions)).order_by(Order.updated_at.desc())
    ).first()


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


def _add_images(session: Session, draft: Draft, product: DraftProduct, now: datetime) -> None:
    """The contact sheet and the cited key frames, for the console (same transaction)."""
    for item in product.items:
        if item.payload_kind == "sheet":
            session.add(DraftImage(draft=draft, kind="sheet", frame_index=-1,
                                   png=item.payload, created_at=now))
    for index, png in sorted(product.key_frames.items()):
        session.add(DraftImage(draft=draft, kind="frame", frame_index=index, png=png,
                               created_at=now))


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
    _add_images(session, draft, product, now)
    rows = add_deliveries(session, settings, draft, product.items, _destinations(settings, job),
                          now)
    job.state, job.finished_at, job.lease_until = "done", now, None
    job.timings = product.timings
    job.last_error = ""
    audit.record(
        session, "draft.created", study_uid=job.study_uid, job_id=job.id, version=job.version,
        profile=job.profile, rule=job.rule_name, model=product.model_name,
        prompt_sha256=product.prompt_sha256, prompt=product.prompt_text,
        frames=product.frame_count,
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


def _cancel(session: Session, job: Job) -> str:
    job.state, job.finished_at, job.lease_until = "cancelled", db_now(session), None
    audit.record(session, "job.cancelled", study_uid=job.study_uid, job_id=job.id,
                 reason="order cancelled or final at the RIS")
    session.commit()
    return job.state


def draft_job(
    sessions: sessionmaker[Session], settings: Settings, links: Links, backend: Any,
    job_id: int, attempts: int, enqueue: Enqueue,
    progress: Callable[[str], None] | None = None,
) -> str:
    """Run job `job_id` for attempt `attempts`; returns the job's new state."""
    with sessions() as session:
        job = claim_job(session, job_id, attempts, worker=worker_identity(),
                        lease_s=settings.jobs.time_limit_s)
        if job is None:
            return "not-due"
        study = session.scalars(select(Study).where(Study.study_uid == job.study_uid)).one()
        if closed_order(session, job.study_uid, study.accession):
            return _cancel(session, job)
        try:
            profile = settings.profiles[job.profile]
            clock = time.perf_counter()
            folder = study_folder(session, settings, job.study_uid)
            evidence = evidence_from_index(session, job.study_uid)
            gather_s = time.perf_counter() - clock
            priors = local_priors(session, settings, study, profile)
            if len(priors) < profile.max_priors:
                priors += bounded_pacs_priors(session, settings, study, profile)[
                    : profile.max_priors - len(priors)]
            priors_s = time.perf_counter() - clock - gather_s
            context = ""
            if links.clinical_context is not None:
                ctx = links.clinical_context(session, job.study_uid, profile=profile,
                                             now=db_now(session))
                context = str(ctx.as_text(CONTEXT_BUDGET_CHARS))
            predecessor = _predecessor(session, job)
            order = _order(session, study)
            hl7 = {n: d for n in _destinations(settings, job)
                   if isinstance(d := settings.destinations[n], Hl7Destination)}
            request = DraftRequest(
                study=folder, priors=priors, profile=profile,
                job_key=job_key(job), context_text=context,
                predecessor=predecessor_ref(settings, job_key(job), predecessor.sr_uid)
                if predecessor and predecessor.sr_uid else None,
                order=order_info(session, order, study), hl7_destinations=hl7,
                patient=patient_info(session, order, study), progress=progress,
                sources=evidence,
            )
            context_s = time.perf_counter() - clock - gather_s - priors_s
            product = run_draft(settings, links, request, backend)
            product.timings = {"gather": round(gather_s, 3), "priors": round(priors_s, 3),
                               "context": round(context_s, 3), **product.timings}
        except FINAL as exc:
            return _fail(session, settings, job, exc, final=True)
        except (RadraftError, OSError, SoftTimeLimitExceeded) as exc:
            # ModelError, DeliveryError, a disk hiccup, the task's soft time limit
            return _fail(session, settings, job, exc, final=False)
        if closed_order(session, job.study_uid, study.accession):
            # The RIS closed the order while the model was drafting: nothing goes out.
            return _cancel(session, job)
        clock = time.perf_counter()
        rows = _store(session, settings, job, product, predecessor)
        session.commit()
        # The commit's own duration, recorded after it (a second, tiny transaction).
        job.timings = {**product.timings, "commit": round(time.perf_counter() - clock, 3)}
        session.commit()
        wakes = [WakeUp("delivery", row.id, 0) for row in rows]
    for wake in wakes:
        enqueue(wake)
    log.info("job %d (%s): drafted, %d deliveries", job_id, job.study_uid, len(wakes))
    return "done"
