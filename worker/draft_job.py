"""The draft task's database side, in three steps so that no transaction spans slow work:

1. claim and gather (one short session, committed): the job, the study's files and index
   headers, local priors, the EHR context, the order, the patient, the predecessor draft;
2. draft with NO session open: PACS priors (C-FIND/C-GET), frames, model, outputs;
3. store (a new session): the job is re-checked under a row lock (still ours, order not
   closed), then the Draft row, its outbox rows and the audit event commit together; the
   wake-ups are published only after that commit.

A PostgreSQL connection "idle in transaction" across a minutes-long model call would hold
locks and an old snapshot for all that time (tests/integration/test_draft_sessions.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from radraft.core import audit
from radraft.core.db import Delivery, Draft, DraftImage, Job, Study, db_now
from radraft.core.errors import ConfigError, FrameError, OutputBuildError, RadraftError
from radraft.core.settings import Hl7Destination, Settings
from radraft.core.types import JobKey
from radraft.ehr.context import clinical_context
from radraft.reporting.model import ModelBackend
from radraft.worker.backoff import next_attempt
from radraft.worker.checking import audit_check, draft_columns
from radraft.worker.draft_inputs import (
    destinations,
    job_key,
    latest_order,
    order_info,
    patient_info,
    predecessor,
)
from radraft.worker.enqueue import Enqueue, WakeUp
from radraft.worker.gather import (
    bounded_pacs_priors,
    evidence_from_index,
    local_priors,
    study_folder,
)
from radraft.worker.heartbeat import worker_identity
from radraft.worker.jobs import claim_job, closed_order
from radraft.worker.outbox import add_deliveries
from radraft.worker.pipeline import DraftProduct, DraftRequest, predecessor_ref, run_draft
from radraft.worker.prefetch import prefetch_pending
from radraft.worker.shadow import hold_shadow_rows

log = logging.getLogger(__name__)

# Properties of the study or the configuration: the job fails at once, for an admin. Other
# radraft errors (a model server restarting, a PACS busy) retry with back-off up to the cap.
FINAL: tuple[type[Exception], ...] = (FrameError, OutputBuildError, ConfigError)
RETRY: tuple[type[Exception], ...] = (RadraftError, OSError, SoftTimeLimitExceeded)

CONTEXT_BUDGET_CHARS = 4000


@dataclass(frozen=True)
class Claim:
    """The job as this worker claimed it: plain values, valid after the session closed."""

    job_id: int
    attempts: int  # the job's attempt number under this claim: the lease is ours while equal
    key: JobKey
    accession: str


@dataclass(frozen=True)
class Gathered:
    """Everything step 2 needs, read in step 1 (step 2 opens no session: the detached Study
    is read for its loaded column values only)."""

    request: DraftRequest
    study: Study  # detached (expire_on_commit=False); read only, for the PACS prior search
    predecessor_id: int | None
    predecessor_sr: str
    timings: dict[str, float]
    # An order's prefetch of this patient's priors is still on its way (it fetches them).
    prefetch_pending: bool = False


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
    session: Session, settings: Settings, job: Job, product: DraftProduct, gathered: Gathered,
) -> list[Delivery]:
    now = db_now(session)
    draft = Draft(
        job_id=job.id, study_uid=job.study_uid, version=job.version, profile=job.profile,
        report=product.report.model_dump(mode="json"), rendered_text=product.rendered_text,
        rendered_html=product.rendered_html, triage_level=product.triage_level,
        sr_uid=product.uids.get("sr", ""), tid1500_uid=product.uids.get("tid1500", ""),
        kos_uid=product.uids.get("kos", ""), predecessor_id=gathered.predecessor_id,
        model_name=product.model_name, prompt_sha256=product.prompt_sha256,
        frame_count=product.frame_count, segments=product.segments, created_at=now,
        **draft_columns(product.checked, product.alert, product.alert_basis),
    )
    session.add(draft)
    audit_check(session, study_uid=job.study_uid, job_id=job.id, checked=product.checked,
                decision=product.alert)
    _add_images(session, draft, product, now)
    rows = add_deliveries(session, settings, draft, product.items,
                          destinations(settings, job.destinations, job.profile), now)
    rows = hold_shadow_rows(settings, job, draft, rows)  # shadow mode: kept, not sent
    job.state, job.finished_at, job.lease_until = "done", now, None
    job.timings = product.timings
    job.last_error = ""
    audit.record(
        session, "draft.created", study_uid=job.study_uid, job_id=job.id, version=job.version,
        profile=job.profile, rule=job.rule_name, model=product.model_name,
        prompt_sha256=product.prompt_sha256, prompt=product.prompt_text,
        frames=product.frame_count, triage=product.triage_level,
        predecessor=gathered.predecessor_sr, deliveries=len(rows), mode=draft.mode,
    )
    return rows


def _ours(session: Session, claim: Claim) -> Job | None:
    """The job, row-locked, if it is still running under our claim; else None.

    The sweeper takes back an expired lease by re-queuing the job (state and, at the next
    claim, attempts change), and it skips rows locked here; so a job still running under our
    attempt number is ours to settle even if its lease time has passed.
    """
    job = session.scalars(select(Job).where(Job.id == claim.job_id)
                          .with_for_update()).one_or_none()
    if job is None or job.state != "running" or job.attempts != claim.attempts:
        log.warning("job %d (%s): no longer ours (state %s, attempt %s, ours %d); result "
                    "dropped", claim.job_id, claim.key[0], job.state if job else "gone",
                    job.attempts if job else "-", claim.attempts)
        return None
    return job


def _fail(
    sessions: sessionmaker[Session], settings: Settings, claim: Claim, exc: BaseException, *,
    final: bool,
) -> str:
    with sessions() as session:
        job = _ours(session, claim)
        if job is None:
            return "lost"
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


def _gather(
    session: Session, settings: Settings, job: Job, study: Study,
    progress: Callable[[str], None] | None,
) -> Gathered:
    """Step 1's reads (the claiming session): files, index headers, local priors, context."""
    profile = settings.profiles[job.profile]
    clock = time.perf_counter()
    folder = study_folder(session, settings, job.study_uid)
    evidence = evidence_from_index(session, job.study_uid)
    gather_s = time.perf_counter() - clock
    priors = local_priors(session, settings, study, profile)
    priors_s = time.perf_counter() - clock - gather_s
    ctx = clinical_context(session, job.study_uid, profile=profile, now=db_now(session))
    previous = predecessor(session, job)
    order = latest_order(session, study)
    hl7 = {n: d for n in destinations(settings, job.destinations, job.profile)
           if isinstance(d := settings.destinations[n], Hl7Destination)}
    key = job_key(job)
    request = DraftRequest(
        study=folder, priors=priors, profile=profile, job_key=key,
        context_text=ctx.as_text(CONTEXT_BUDGET_CHARS),
        predecessor=predecessor_ref(settings, key, previous.sr_uid)
        if previous and previous.sr_uid else None,
        order=order_info(session, order, study), hl7_destinations=hl7,
        patient=patient_info(session, order, study), progress=progress, sources=evidence,
    )
    context_s = time.perf_counter() - clock - gather_s - priors_s
    return Gathered(request=request, study=study,
                    predecessor_id=previous.id if previous else None,
                    predecessor_sr=previous.sr_uid if previous else "",
                    timings={"gather": round(gather_s, 3), "priors": round(priors_s, 3),
                             "context": round(context_s, 3)},
                    prefetch_pending=prefetch_pending(session, study))


def _draft(settings: Settings, gathered: Gathered, backend: ModelBackend) -> DraftProduct:
    """Step 2, with no session open: PACS priors, then frames, model and outputs."""
    request = gathered.request
    clock = time.perf_counter()
    wanted = request.profile.max_priors - len(request.priors)
    if wanted > 0:
        fetched = bounded_pacs_priors(settings, gathered.study, request.profile,
                                      prefetch_pending=gathered.prefetch_pending)[:wanted]
        request = replace(request, priors=[*request.priors, *fetched])
    pacs_s = time.perf_counter() - clock
    product = run_draft(settings, request, backend)
    timings = dict(gathered.timings)
    timings["priors"] = round(timings["priors"] + pacs_s, 3)
    product.timings = {**timings, **product.timings}
    return product


def draft_job(
    sessions: sessionmaker[Session], settings: Settings, backend: ModelBackend,
    job_id: int, attempts: int, enqueue: Enqueue,
    progress: Callable[[str], None] | None = None,
) -> str:
    """Run job `job_id` for attempt `attempts`; returns the job's new state ("not-due" when
    the message is stale, "lost" when the job was taken back while it was drafted)."""
    with sessions() as session:
        job = claim_job(session, job_id, attempts, worker=worker_identity(),
                        lease_s=settings.jobs.time_limit_s)
        if job is None:
            return "not-due"
        study = session.scalars(select(Study).where(Study.study_uid == job.study_uid)).one()
        claim = Claim(job.id, job.attempts, job_key(job), study.accession)
        if closed_order(session, job.study_uid, study.accession):
            return _cancel(session, job)
        try:
            gathered = _gather(session, settings, job, study, progress)
            session.commit()  # the context may flag the study (identity mismatch)
        except FINAL as exc:
            session.rollback()
            return _fail(sessions, settings, claim, exc, final=True)
        except RETRY as exc:
            session.rollback()
            return _fail(sessions, settings, claim, exc, final=False)
    try:
        product = _draft(settings, gathered, backend)
    except FINAL as exc:
        return _fail(sessions, settings, claim, exc, final=True)
    except RETRY as exc:
        # ModelError, DeliveryError, a disk hiccup, the task's soft time limit
        return _fail(sessions, settings, claim, exc, final=False)
    with sessions() as session:
        locked = _ours(session, claim)
        if locked is None:
            return "lost"
        if closed_order(session, claim.key[0], claim.accession):
            # The RIS closed the order while the model was drafting: nothing goes out.
            return _cancel(session, locked)
        clock = time.perf_counter()
        rows = _store(session, settings, locked, product, gathered)
        session.commit()
        # The commit's own duration, recorded after it (a second, tiny transaction).
        locked.timings = {**product.timings, "commit": round(time.perf_counter() - clock, 3)}
        session.commit()
        wakes = [WakeUp("delivery", row.id, 0) for row in rows]
    for wake in wakes:
        enqueue(wake)
    log.info("job %d (%s): drafted, %d deliveries", job_id, claim.key[0], len(wakes))
    return "done"
