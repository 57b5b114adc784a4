"""Priors before the study: an order arriving over HL7 starts a background prior prefetch.

`request_prefetch` (the HL7 hook, in `radraft serve`) adds one PriorPrefetch row per active
order of a known patient; the Celery task `radraft.prefetch` runs `run_prefetch`: C-FIND at
the PACS by patient ID (and issuer), relevance by the profile named in
`pacs.prefetch_profile` (modalities, body-part words in the study description, age within
`prior_window_days`, newest `max_priors`), and C-GET of what radraft does not hold yet into
the prior cache (<data_dir>/priors/<study uid>/, written to a partial folder and renamed,
so a draft sees a prior whole or not at all). The rows are the source of truth: a restart,
a lost message or a killed worker delays the prefetch (the sweeper re-sends due rows),
never loses it. A draft uses the cached priors (`prefetched_priors`) and never waits for a
prefetch in progress.
"""

from __future__ import annotations

import logging
import re
import shutil
import ssl
from datetime import timedelta
from pathlib import Path

from pydicom.dataset import Dataset
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from radraft.core import audit
from radraft.core.db import Order, Patient, PriorPrefetch, Study, db_now
from radraft.core.errors import DeliveryError
from radraft.core.settings import ProfileSettings, Settings
from radraft.core.tls import client_context
from radraft.dicom_node.client import Peer, find_studies, get_study, move_study
from radraft.worker.backoff import next_attempt
from radraft.worker.enqueue import WakeUp

log = logging.getLogger(__name__)

_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
CLOSED = frozenset({"cancelled", "final"})


def cache_folder(settings: Settings, study_uid: str) -> Path | None:
    """<data_dir>/priors/<uid>, only for a well-formed UID (a peer's value never makes an
    arbitrary path)."""
    if len(study_uid) > 64 or not _UID.match(study_uid):
        return None
    return settings.data_dir / "priors" / study_uid


def request_prefetch(session: Session, settings: Settings, accession: str) -> WakeUp | None:
    """Add the prefetch row of this order if it should have one (the caller commits and
    publishes the wake-up). Idempotent: one row per order."""
    if not settings.pacs.host or not settings.pacs.prefetch or not accession:
        return None
    order = session.scalars(select(Order).where(Order.accession == accession)).first()
    if order is None or order.status in CLOSED or order.patient_ref is None:
        return None
    patient = session.get(Patient, order.patient_ref)
    if patient is None or not patient.patient_id:
        return None
    known = session.scalar(select(PriorPrefetch.id).where(PriorPrefetch.order_id == order.id))
    if known is not None:
        return None
    now = db_now(session)
    row = PriorPrefetch(
        order_id=order.id, patient_id=patient.patient_id, issuer=patient.issuer,
        profile=settings.pacs.prefetch_profile, state="queued", created_at=now,
        # Re-sent by the sweeper only if the wake-up is lost.
        next_attempt_at=now + timedelta(seconds=settings.jobs.redeliver_after_s),
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return None  # the same order, stored twice at once: the other one prefetches
    audit.record(session, "prefetch.requested", accession=accession, prefetch_id=row.id)
    return WakeUp("prefetch", row.id, 0)


def _relevant(found: list[Dataset], prefetch: PriorPrefetch, profile: ProfileSettings,
              since: str) -> list[Dataset]:
    modalities = {m.upper() for m in profile.prior_modalities}
    words = [w.lower() for w in profile.prior_body_parts]
    chosen = []
    for ds in found:
        if prefetch.issuer and str(ds.get("IssuerOfPatientID", "") or prefetch.issuer) != (
                prefetch.issuer):
            continue  # the same number from another assigning authority: another patient
        if str(ds.get("PatientID", "") or prefetch.patient_id) != prefetch.patient_id:
            continue
        in_study = {m.upper() for m in str(ds.get("ModalitiesInStudy", "")).split("\\") if m}
        if modalities and not modalities & in_study:
            continue
        description = str(ds.get("StudyDescription", "")).lower()
        if words and not any(w in description for w in words):
            continue
        if since and str(ds.get("StudyDate", "")) < since:
            continue
        chosen.append(ds)
    chosen.sort(key=lambda d: str(d.get("StudyDate", "")), reverse=True)
    return chosen[: profile.max_priors]


def _held(session: Session, settings: Settings, study_uid: str) -> bool:
    folder = cache_folder(settings, study_uid)
    if folder is not None and folder.is_dir() and any(folder.iterdir()):
        return True
    return session.scalar(select(Study.id).where(Study.study_uid == study_uid)) is not None


def _retrieve(settings: Settings, peer: Peer, study_uid: str, folder: Path) -> None:
    if settings.pacs.retrieve == "move":
        move_study(peer, study_uid, settings.dicom.ae_title)
        return
    partial = folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    get_study(peer, study_uid, partial)
    partial.rename(folder)


def claim_prefetch(session: Session, prefetch_id: int, attempts: int,
                   settings: Settings) -> PriorPrefetch | None:
    now = db_now(session)
    lease = now + timedelta(seconds=settings.pacs.timeout_s * 10)
    result = session.execute(update(PriorPrefetch).where(
        PriorPrefetch.id == prefetch_id, PriorPrefetch.attempts == attempts,
        PriorPrefetch.state == "queued",
    ).values(state="running", attempts=attempts + 1, next_attempt_at=lease)
        .execution_options(synchronize_session=False))
    session.commit()
    if getattr(result, "rowcount", 0) != 1:
        return None
    return session.get(PriorPrefetch, prefetch_id, populate_existing=True)


def run_prefetch(session: Session, settings: Settings, prefetch_id: int, attempts: int) -> str:
    """The task body: find, choose, retrieve what is missing; returns the row's new state."""
    prefetch = claim_prefetch(session, prefetch_id, attempts, settings)
    if prefetch is None:
        return "not-due"
    profile = settings.profiles.get(prefetch.profile)
    if profile is None:
        return _finish(session, prefetch, "failed",
                       f"pacs.prefetch_profile: unknown profile {prefetch.profile!r}")
    pacs = settings.pacs
    try:
        tls = client_context(pacs)
    except (OSError, ssl.SSLError) as exc:
        return _finish(session, prefetch, "failed", f"pacs.tls_* unusable: {exc}")
    peer = Peer(pacs.host, pacs.port, pacs.ae_title, settings.dicom.ae_title, pacs.timeout_s,
                tls=tls)
    now = db_now(session)
    since = (now - timedelta(days=profile.prior_window_days)).strftime("%Y%m%d")
    try:
        found = find_studies(peer, patient_id=prefetch.patient_id, issuer=prefetch.issuer,
                             date_range=f"{since}-")
        chosen = _relevant(found, prefetch, profile, since)
        held = retrieved = 0
        for ds in chosen:
            uid = str(ds.StudyInstanceUID)
            folder = cache_folder(settings, uid)
            if folder is None:
                log.warning("prefetch %d: PACS answered a malformed Study UID; skipped",
                            prefetch.id)
                continue
            if _held(session, settings, uid):
                held += 1
                continue
            _retrieve(settings, peer, uid, folder)
            retrieved += 1
    except (DeliveryError, OSError) as exc:
        return _retry(session, settings, prefetch, f"{type(exc).__name__}: {exc}")
    prefetch.chosen = [str(ds.StudyInstanceUID) for ds in chosen]
    prefetch.held, prefetch.retrieved = held, retrieved
    return _finish(session, prefetch, "done", "")


def _finish(session: Session, prefetch: PriorPrefetch, state: str, error: str) -> str:
    prefetch.state, prefetch.last_error = state, error
    prefetch.finished_at, prefetch.next_attempt_at = db_now(session), None
    audit.record(session, f"prefetch.{state}", prefetch_id=prefetch.id,
                 chosen=len(prefetch.chosen), held=prefetch.held,
                 retrieved=prefetch.retrieved, error=error or None)
    session.commit()
    log.info("prefetch %d %s: %d relevant prior(s), %d held, %d retrieved", prefetch.id,
             state, len(prefetch.chosen), prefetch.held, prefetch.retrieved)
    return state


def _retry(session: Session, settings: Settings, prefetch: PriorPrefetch, error: str) -> str:
    if prefetch.attempts >= settings.jobs.max_attempts:
        return _finish(session, prefetch, "failed", error)
    now = db_now(session)
    prefetch.state, prefetch.last_error = "queued", error
    prefetch.next_attempt_at = next_attempt(now, prefetch.attempts,
                                            base_s=settings.delivery.base_backoff_s,
                                            cap_s=settings.delivery.max_backoff_s)
    session.commit()
    log.warning("prefetch %d: %s; retried later", prefetch.id, error)
    return "queued"


def due_prefetches(session: Session, now_plus: timedelta) -> list[WakeUp]:
    """For the sweeper: queued rows whose wake-up is due, and running rows whose worker
    vanished (their lease passed); each re-sent once per `now_plus`."""
    now = db_now(session)
    rows = session.execute(select(PriorPrefetch.id, PriorPrefetch.attempts).where(
        or_(PriorPrefetch.state == "queued", PriorPrefetch.state == "running"),
        PriorPrefetch.next_attempt_at <= now,
    ).limit(500)).all()
    if rows:
        session.execute(update(PriorPrefetch).where(
            PriorPrefetch.id.in_([r[0] for r in rows])).values(
            state="queued", next_attempt_at=now + now_plus))
    return [WakeUp("prefetch", row_id, attempts) for row_id, attempts in rows]


def prefetch_pending(session: Session, study: Study) -> bool:
    """An order's prefetch for this study's patient is queued or running."""
    if not study.patient_id:
        return False
    return session.scalar(select(PriorPrefetch.id).where(
        PriorPrefetch.patient_id == study.patient_id,
        PriorPrefetch.state.in_(("queued", "running"))).limit(1)) is not None


def prefetched_priors(session: Session, settings: Settings, study: Study) -> list[Path]:
    """Cached priors of the study's patient from finished prefetches, newest first."""
    if not study.patient_id:
        return []
    conditions = [PriorPrefetch.patient_id == study.patient_id, PriorPrefetch.state == "done"]
    if study.issuer_of_patient_id:
        conditions.append(PriorPrefetch.issuer.in_(("", study.issuer_of_patient_id)))
    folders: list[Path] = []
    for chosen in session.scalars(select(PriorPrefetch.chosen).where(*conditions)
                                  .order_by(PriorPrefetch.id.desc())):
        for uid in chosen:
            folder = cache_folder(settings, uid)
            if (uid != study.study_uid and folder is not None and folder.is_dir()
                    and folder not in folders):
                folders.append(folder)
    return folders
