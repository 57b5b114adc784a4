"""The instance index: Study / Series / Instance rows, and the study version."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from radraft.core import audit
from radraft.core.db import Instance, Series, Study, db_now
from radraft.dicom_node.header import InstanceHeader

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IndexResult:
    study_uid: str
    new_instance: bool
    is_image: bool


def version_of(image_sop_uids: list[str]) -> str:
    """A study's version: SHA-256 of its sorted IMAGE SOP Instance UIDs (DESIGN.md)."""
    digest = hashlib.sha256()
    for uid in sorted(image_sop_uids):
        digest.update(uid.encode())
        digest.update(b"\n")
    return digest.hexdigest()


def study_version(session: Session, study_id: int) -> tuple[str, int, int]:
    """(version, image count, instance count) of a study, from its Instance rows."""
    rows = session.execute(
        select(Instance.sop_uid, Instance.is_image).where(Instance.study_id == study_id)
    ).all()
    images = [uid for uid, is_image in rows if is_image]
    return version_of(images), len(images), len(rows)


def _merge_modality(existing: str, modality: str) -> str:
    if not modality:
        return existing
    values = [m for m in existing.split("\\") if m]
    if modality not in values:
        values.append(modality)
    return "\\".join(values)[:64]


def _study(session: Session, header: InstanceHeader, calling_aet: str, now: datetime) -> Study:
    study = session.scalars(select(Study).where(Study.study_uid == header.study_uid)).first()
    if study is not None:
        return study
    study = Study(
        study_uid=header.study_uid, patient_id=header.patient_id,
        issuer_of_patient_id=header.issuer_of_patient_id, accession=header.accession,
        study_date=header.study_date, study_description=header.study_description,
        modalities="", body_part=header.body_part, institution=header.institution,
        patient_age_years=header.patient_age_years, patient_sex=header.patient_sex,
        calling_aet=calling_aet[:16], source="received", first_received_at=now,
        last_received_at=now, instance_count=0, image_count=0,
    )
    try:
        with session.begin_nested():
            session.add(study)
    except IntegrityError:
        # Another receiving process created it a moment ago.
        study = session.scalars(select(Study).where(Study.study_uid == header.study_uid)).one()
    return study


def _series(session: Session, study_id: int, header: InstanceHeader) -> Series:
    series = session.scalars(select(Series).where(Series.series_uid == header.series_uid)).first()
    if series is not None:
        return series
    series = Series(
        study_id=study_id, series_uid=header.series_uid, modality=header.modality,
        series_number=header.series_number, description=header.series_description,
        body_part=header.body_part,
    )
    try:
        with session.begin_nested():
            session.add(series)
    except IntegrityError:
        series = session.scalars(
            select(Series).where(Series.series_uid == header.series_uid)
        ).one()
    return series


class IndexCache:
    """Per-process memory of study and series row ids: skips two lookups per instance.

    Rows are only ever deleted by purge; a stale id makes the insert fail on its foreign
    key, and the caller clears the cache and retries (see StoreHandler).
    """

    def __init__(self) -> None:
        self.studies: dict[str, tuple[int, str, bool]] = {}  # uid -> (id, modalities, accession)
        self.series: dict[str, int] = {}

    def clear(self) -> None:
        self.studies.clear()
        self.series.clear()


def index_instance(
    session: Session, header: InstanceHeader, path: Path, size: int, *, calling_aet: str,
    uid_root: str, cache: IndexCache | None = None,
) -> IndexResult:
    """Add or refresh the rows for one stored instance (the caller commits).

    A second copy of a known SOP Instance UID replaces the first (last copy wins), is
    audited, and leaves the study's version and stability timer alone.
    """
    cache = cache if cache is not None else IndexCache()
    now = db_now(session)
    known_study = cache.studies.get(header.study_uid)
    if known_study is None:
        study = _study(session, header, calling_aet, now)
        known_study = (study.id, study.modalities, bool(study.accession))
    study_id, modalities, has_accession = known_study
    series_id = cache.series.get(header.series_uid)
    if series_id is None:
        series_id = _series(session, study_id, header).id
    changes: dict[str, object] = {"last_received_at": now}
    merged = _merge_modality(modalities, header.modality)
    if merged != modalities:
        changes["modalities"] = merged
    if not has_accession and header.accession:
        changes["accession"] = header.accession
        has_accession = True
    cache.studies[header.study_uid] = (study_id, merged, has_accession)
    cache.series[header.series_uid] = series_id
    existing = session.execute(
        select(Instance.id, Instance.path, Instance.receive_count, Instance.is_image)
        .where(Instance.sop_uid == header.sop_uid)
    ).first()
    if existing is not None:
        session.execute(update(Instance).where(Instance.id == existing.id).values(
            path=str(path), size=size, transfer_syntax=header.transfer_syntax,
            received_at=now, receive_count=Instance.receive_count + 1,
            study_id=study_id, series_id=series_id,
        ))
        _update_study(session, study_id, changes)
        audit.record(
            session, "instance.duplicate", study_uid=header.study_uid, sop_uid=header.sop_uid,
            transfer_syntax=header.transfer_syntax, calling_aet=calling_aet,
            receive_count=existing.receive_count + 1, replaced_path=existing.path,
        )
        return IndexResult(header.study_uid, new_instance=False, is_image=existing.is_image)
    is_image = header.is_image(uid_root)
    session.execute(insert(Instance).values(
        study_id=study_id, series_id=series_id, sop_uid=header.sop_uid,
        sop_class_uid=header.sop_class_uid, transfer_syntax=header.transfer_syntax,
        path=str(path), size=size, is_image=is_image, instance_number=header.instance_number,
        received_at=now, receive_count=1,
    ))
    # Counters are incremented in SQL: concurrent associations must not lose an update.
    changes["instance_count"] = Study.instance_count + 1
    if is_image:
        changes["image_count"] = Study.image_count + 1
        # Only a NEW image restarts the stability timer (DESIGN.md "Identity").
        changes["last_image_at"] = now
    _update_study(session, study_id, changes)
    return IndexResult(header.study_uid, new_instance=True, is_image=is_image)


def _update_study(session: Session, study_id: int, changes: dict[str, object]) -> None:
    session.execute(
        update(Study).where(Study.id == study_id).values(changes)
        .execution_options(synchronize_session=False)
    )


def begin_write(session: Session) -> None:
    """Start a write transaction; on SQLite take the write lock first.

    A deferred SQLite transaction that reads and then writes fails at once (SQLITE_BUSY,
    no busy wait) when another process committed in between; BEGIN IMMEDIATE waits instead.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("BEGIN IMMEDIATE"))
