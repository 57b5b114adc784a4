"""Gather a study and its priors from storage (and from the PACS when one is configured)."""

from __future__ import annotations

import logging
import shutil
import ssl
import threading
from datetime import datetime, timedelta
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from sqlalchemy import select
from sqlalchemy.orm import Session

from radraft.core.db import Instance, Series, Study
from radraft.core.errors import DeliveryError, FrameError
from radraft.core.settings import ProfileSettings, Settings
from radraft.core.tls import client_context
from radraft.dicom_node.client import Peer, find_studies, get_study, move_study
from radraft.dicom_node.client.web_query import WebPacs, find_studies_web, get_study_web
from radraft.worker.prefetch import cache_folder, prefetched_priors

log = logging.getLogger(__name__)


def study_folder(session: Session, settings: Settings, study_uid: str) -> Path:
    """The folder holding the study's stored instances (<store>/<study>/<series>/<sop>.dcm)."""
    path = session.scalar(
        select(Instance.path).join(Study, Study.id == Instance.study_id)
        .where(Study.study_uid == study_uid, Instance.is_image.is_(True)).limit(1)
    )
    if path is None:
        raise FrameError(f"study {study_uid}: no stored image instance")
    stored = Path(path)
    if not stored.is_absolute():
        stored = settings.dicom_dir / stored
    return stored.parent.parent


def evidence_from_index(session: Session, study_uid: str) -> list[Dataset]:
    """The SR's evidence without parsing every file: the first image's full header (patient
    and study attributes) and, for the others, the UIDs the index already holds."""
    rows = session.execute(
        select(Instance.path, Instance.sop_uid, Instance.sop_class_uid, Series.series_uid,
               Series.series_number, Instance.instance_number)
        .join(Series, Series.id == Instance.series_id).join(Study, Study.id == Instance.study_id)
        .where(Study.study_uid == study_uid, Instance.is_image.is_(True))
        .order_by(Series.series_uid, Instance.instance_number, Instance.sop_uid)
    ).all()
    if not rows:
        raise FrameError(f"study {study_uid}: no stored image instance")
    first = dcmread(rows[0][0], stop_before_pixels=True)
    sources: list[Dataset] = [first]
    for _path, sop_uid, sop_class_uid, series_uid, series_no, instance_no in rows[1:]:
        ds = Dataset()
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = sop_uid
        ds.SOPClassUID = sop_class_uid
        # The human references ("series 7, image 271") of alerts and reports.
        if series_no is not None:
            ds.SeriesNumber = series_no
        if instance_no is not None:
            ds.InstanceNumber = instance_no
        sources.append(ds)
    return sources


def _window_start(study: Study, days: int) -> str:
    try:
        when = datetime.strptime(study.study_date, "%Y%m%d")
    except ValueError:
        return ""
    return (when - timedelta(days=days)).strftime("%Y%m%d")


def local_priors(
    session: Session, settings: Settings, study: Study, profile: ProfileSettings,
) -> list[Path]:
    """Earlier studies of the same patient already in the store, newest first, at most N."""
    if not study.patient_id or profile.max_priors == 0:
        return []
    earliest = _window_start(study, profile.prior_window_days)
    rows = session.scalars(select(Study).where(
        Study.patient_id == study.patient_id, Study.study_uid != study.study_uid,
        Study.study_date <= study.study_date, Study.study_date >= earliest,
    ).order_by(Study.study_date.desc())).all()
    folders = []
    for prior in rows[: profile.max_priors]:
        try:
            folders.append(study_folder(session, settings, prior.study_uid))
        except FrameError:
            continue
    # Priors an order's prefetch put in the prior cache (worker/prefetch.py).
    folders += [f for f in prefetched_priors(session, settings, study) if f not in folders]
    return folders[: profile.max_priors]


def modalities_in_study(ds: Dataset) -> set[str]:
    """Modalities In Study of a C-FIND or QIDO-RS answer (multi-valued: a MultiValue)."""
    value = ds.get("ModalitiesInStudy", "")
    if isinstance(value, MultiValue):
        return {str(v) for v in value if v}
    return {v for v in str(value).split("\\") if v}


def _find(settings: Settings, peer: Peer | None, patient_id: str,
          date_range: str) -> list[Dataset]:
    if peer is None:  # pacs.kind: dicomweb
        return find_studies_web(_web_pacs(settings), patient_id=patient_id,
                                date_range=date_range)
    return find_studies(peer, patient_id=patient_id, date_range=date_range)


def _dimse_peer(settings: Settings) -> Peer:
    """The PACS as a DIMSE peer, over TLS when `pacs.tls` says so."""
    pacs = settings.pacs
    return Peer(pacs.host, pacs.port, pacs.ae_title, settings.dicom.ae_title, pacs.timeout_s,
                tls=client_context(pacs))


def _web_pacs(settings: Settings) -> WebPacs:
    pacs = settings.pacs
    return WebPacs(pacs.url, pacs.token.get_secret_value(), pacs.timeout_s)


def _configured(settings: Settings) -> bool:
    pacs = settings.pacs
    return bool(pacs.url) if pacs.kind == "dicomweb" else bool(pacs.host)


def pacs_priors(settings: Settings, study: Study, profile: ProfileSettings) -> list[Path]:
    """Find this patient's earlier studies at the PACS (same modality, date window) and
    fetch the newest N into <data_dir>/priors/<study>/. Empty when no PACS is configured.

    `pacs.kind: dimse`: C-FIND, then C-GET; C-MOVE needs the PACS to know radraft's node as
    a destination: the moved instances then arrive through the node (`pacs.retrieve: move`)
    and are found locally on the next draft. `pacs.kind: dicomweb`: QIDO-RS, then WADO-RS.
    """
    pacs = settings.pacs
    if not _configured(settings) or not study.patient_id or profile.max_priors == 0:
        return []
    peer: Peer | None = None
    if pacs.kind == "dimse":
        try:
            peer = _dimse_peer(settings)
        except (OSError, ssl.SSLError) as exc:
            log.warning("study %s: pacs.tls_* unusable (%s); drafting without PACS priors",
                        study.study_uid, exc)
            return []
    earliest = _window_start(study, profile.prior_window_days)
    latest = study.study_date
    try:
        found = _find(settings, peer, study.patient_id,
                      f"{earliest}-{latest}" if earliest else "")
    except DeliveryError as exc:
        log.warning("study %s: prior search failed (%s); drafting without PACS priors",
                    study.study_uid, exc)
        return []
    modalities = set(study.modalities.split("\\")) if study.modalities else set()
    candidates = [
        ds for ds in found
        if str(ds.get("StudyInstanceUID", "")) != study.study_uid
        and (not modalities or modalities & modalities_in_study(ds))
    ]
    candidates.sort(key=lambda ds: str(ds.get("StudyDate", "")), reverse=True)
    folders = []
    for ds in candidates[: profile.max_priors]:
        uid = str(ds.StudyInstanceUID)
        target = cache_folder(settings, uid)
        if target is None:
            log.warning("study %s: the PACS answered a malformed Study UID; skipped",
                        study.study_uid)
            continue
        if pacs.kind == "dicomweb" or pacs.retrieve == "get":
            if not (target.exists() and any(target.iterdir())):
                # Whole or not at all: a folder that exists is a complete prior.
                partial = target.with_name(f".{target.name}.draft-partial")
                shutil.rmtree(partial, ignore_errors=True)
                if peer is None:
                    get_study_web(_web_pacs(settings), uid, partial)
                else:
                    get_study(peer, uid, partial)
                partial.rename(target)
            folders.append(target)
        elif peer is not None:
            move_study(peer, uid, settings.dicom.ae_title)
    return folders


def bounded_pacs_priors(
    settings: Settings, study: Study, profile: ProfileSettings, *, prefetch_pending: bool,
) -> list[Path]:
    """`pacs_priors` for a draft that must not wait on the PACS longer than pacs.timeout_s
    in all: past it the draft goes on without them (the retrieval finishes in the background
    into the cache, for the next draft). Nothing when an order's prefetch for this patient
    is still on its way (`prefetch_pending`, read in the claiming session): it fetches the
    same priors. Runs with no database session open."""
    if not _configured(settings) or prefetch_pending:
        return []
    found: list[Path] = []
    failed: list[BaseException] = []
    # The thread may outlive this call: it gets a copy of the facts it reads, never a row
    # bound to the caller's session.
    facts = Study(study_uid=study.study_uid, patient_id=study.patient_id,
                  study_date=study.study_date, modalities=study.modalities)

    def fetch() -> None:
        try:
            found.extend(pacs_priors(settings, facts, profile))
        except (DeliveryError, OSError) as exc:
            failed.append(exc)

    worker = threading.Thread(target=fetch, name="pacs-priors", daemon=True)
    worker.start()
    worker.join(settings.pacs.timeout_s)
    if worker.is_alive():
        log.warning("study %s: PACS priors not there within pacs.timeout_s (%.0f s); "
                    "drafting without them", study.study_uid, settings.pacs.timeout_s)
        return []
    if failed:
        log.warning("study %s: PACS priors failed (%s); drafting without them",
                    study.study_uid, failed[0])
    return list(found)
