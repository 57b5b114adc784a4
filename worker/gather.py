"""Gather a study and its priors from storage (and from the PACS when one is configured)."""

from __future__ import annotations

import logging
import ssl
from datetime import datetime, timedelta
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset
from sqlalchemy import select
from sqlalchemy.orm import Session

from radraft.core.db import Instance, Series, Study
from radraft.core.errors import DeliveryError, FrameError
from radraft.core.settings import ProfileSettings, Settings
from radraft.core.tls import client_context
from radraft.dicom_node.client import Peer, find_studies, get_study, move_study

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
        select(Instance.path, Instance.sop_uid, Instance.sop_class_uid, Series.series_uid)
        .join(Series, Series.id == Instance.series_id).join(Study, Study.id == Instance.study_id)
        .where(Study.study_uid == study_uid, Instance.is_image.is_(True))
        .order_by(Series.series_uid, Instance.instance_number, Instance.sop_uid)
    ).all()
    if not rows:
        raise FrameError(f"study {study_uid}: no stored image instance")
    first = dcmread(rows[0][0], stop_before_pixels=True)
    sources: list[Dataset] = [first]
    for _path, sop_uid, sop_class_uid, series_uid in rows[1:]:
        ds = Dataset()
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = sop_uid
        ds.SOPClassUID = sop_class_uid
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
    return folders


def pacs_priors(settings: Settings, study: Study, profile: ProfileSettings) -> list[Path]:
    """C-FIND the PACS for this patient's earlier studies (same modality, date window) and
    C-GET the newest N into <data_dir>/priors/<study>/. Empty when no PACS is configured.

    C-MOVE needs the PACS to know radraft's node as a destination: the moved instances then
    arrive through the node (`pacs.retrieve: move`) and are found locally on the next draft.
    """
    pacs = settings.pacs
    if not pacs.host or not study.patient_id or profile.max_priors == 0:
        return []
    try:
        tls = client_context(pacs)
    except (OSError, ssl.SSLError) as exc:
        log.warning("study %s: pacs.tls_* unusable (%s); drafting without PACS priors",
                    study.study_uid, exc)
        return []
    peer = Peer(pacs.host, pacs.port, pacs.ae_title, settings.dicom.ae_title, pacs.timeout_s,
                tls=tls)
    earliest = _window_start(study, profile.prior_window_days)
    latest = study.study_date
    try:
        found = find_studies(
            peer, patient_id=study.patient_id,
            date_range=f"{earliest}-{latest}" if earliest else "",
        )
    except DeliveryError as exc:
        log.warning("study %s: prior C-FIND failed (%s); drafting without PACS priors",
                    study.study_uid, exc)
        return []
    modalities = set(study.modalities.split("\\")) if study.modalities else set()
    candidates = [
        ds for ds in found
        if str(ds.get("StudyInstanceUID", "")) != study.study_uid
        and (not modalities or modalities & set(str(ds.get("ModalitiesInStudy", "")).split("\\")))
    ]
    candidates.sort(key=lambda ds: str(ds.get("StudyDate", "")), reverse=True)
    folders = []
    for ds in candidates[: profile.max_priors]:
        uid = str(ds.StudyInstanceUID)
        target = settings.data_dir / "priors" / uid
        if pacs.retrieve == "get":
            if not (target.exists() and any(target.iterdir())):
                get_study(peer, uid, target)
            folders.append(target)
        else:
            move_study(peer, uid, settings.dicom.ae_title)
    return folders
