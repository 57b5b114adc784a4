"""The instance index: Study / Series / Instance rows, and the study version."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from radraft.core.db import AuditEvent, Instance, Series, Study, connection_of, db_now
from radraft.dicom_node.header.reading import InstanceHeader

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


def _study(
    conn: Connection, header: InstanceHeader, calling_aet: str, now: datetime,
) -> tuple[int, str, bool]:
    """(row id, modalities, has an accession) of the header's study, created if new."""
    found = conn.execute(_FIND_STUDY, {"uid": header.study_uid}).first()
    if found is None:
        values = {
            "study_uid": header.study_uid, "patient_id": header.patient_id,
            "issuer_of_patient_id": header.issuer_of_patient_id, "accession": header.accession,
            "study_date": header.study_date, "study_description": header.study_description,
            "modalities": "", "body_part": header.body_part, "institution": header.institution,
            "patient_age_years": header.patient_age_years, "patient_sex": header.patient_sex,
            "calling_aet": calling_aet[:16], "source": "received", "first_received_at": now,
            "last_received_at": now, "instance_count": 0, "image_count": 0,
        }
        try:
            with conn.begin_nested():
                conn.execute(insert(_STUDY).values(values))
        except IntegrityError:
            pass  # another receiving process created it a moment ago
        found = conn.execute(_FIND_STUDY, {"uid": header.study_uid}).one()
    return found.id, found.modalities, bool(found.accession)


def _series(conn: Connection, study_id: int, header: InstanceHeader) -> int:
    found = conn.execute(_FIND_SERIES, {"uid": header.series_uid}).scalar()
    if found is None:
        values = {
            "study_id": study_id, "series_uid": header.series_uid, "modality": header.modality,
            "series_number": header.series_number, "description": header.series_description,
            "body_part": header.body_part,
        }
        try:
            with conn.begin_nested():
                conn.execute(insert(_SERIES).values(values))
        except IntegrityError:
            pass  # created by another receiving process meanwhile
        found = conn.execute(_FIND_SERIES, {"uid": header.series_uid}).scalar_one()
    return int(found)


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


# Statements built once: building them per instance cost more than running them.
_INSTANCE = cast(Table, Instance.__table__)
_STUDY = cast(Table, Study.__table__)
_SERIES = cast(Table, Series.__table__)
_AUDIT = cast(Table, AuditEvent.__table__)
_FIND_STUDY = select(_STUDY.c.id, _STUDY.c.modalities, _STUDY.c.accession).where(
    _STUDY.c.study_uid == bindparam("uid")
)
_FIND_SERIES = select(_SERIES.c.id).where(_SERIES.c.series_uid == bindparam("uid"))
_FIND_INSTANCE = select(
    _INSTANCE.c.id, _INSTANCE.c.path, _INSTANCE.c.receive_count, _INSTANCE.c.is_image,
).where(_INSTANCE.c.sop_uid == bindparam("sop_uid"))
# A new SOP Instance UID (the usual case) is one statement; a conflict is a re-send.
_ADD_INSTANCE = {
    dialect: dialect_insert(_INSTANCE).on_conflict_do_nothing(index_elements=["sop_uid"])
    .returning(_INSTANCE.c.id)
    for dialect, dialect_insert in (("sqlite", sqlite_insert), ("postgresql", postgres_insert))
}
_REFRESH_INSTANCE = update(_INSTANCE).where(_INSTANCE.c.id == bindparam("row_id")).values(
    path=bindparam("path"), size=bindparam("size"), transfer_syntax=bindparam("ts"),
    received_at=bindparam("now"), receive_count=_INSTANCE.c.receive_count + 1,
    study_id=bindparam("study"), series_id=bindparam("series"),
)
# Counters are incremented in SQL: concurrent associations must not lose an update.
_TOUCH_STUDY = update(_STUDY).where(_STUDY.c.id == bindparam("study")).values(
    last_received_at=bindparam("now"),
)
_ADD_TO_STUDY = _TOUCH_STUDY.values(instance_count=_STUDY.c.instance_count + 1)
# Only a NEW image restarts the stability timer (DESIGN.md "Identity").
_ADD_IMAGE_TO_STUDY = _ADD_TO_STUDY.values(
    image_count=_STUDY.c.image_count + 1, last_image_at=bindparam("now"),
)


def index_instance(
    db: Session | Connection, header: InstanceHeader, path: Path, size: int, *,
    calling_aet: str, uid_root: str, cache: IndexCache | None = None,
) -> IndexResult:
    """Add or refresh the rows for one stored instance (the caller commits).

    A second copy of a known SOP Instance UID replaces the first (last copy wins), is
    audited, and leaves the study's version and stability timer alone. Core statements
    only: the ORM's unit of work cost more than the rows themselves on the ingest path.
    """
    cache = cache if cache is not None else IndexCache()
    connection = connection_of(db)
    now = db_now(connection)
    known_study = cache.studies.get(header.study_uid)
    if known_study is None:
        known_study = _study(connection, header, calling_aet, now)
    study_id, modalities, has_accession = known_study
    series_id = cache.series.get(header.series_uid)
    if series_id is None:
        series_id = _series(connection, study_id, header)
    rare: dict[str, object] = {}
    merged = _merge_modality(modalities, header.modality)
    if merged != modalities:
        rare["modalities"] = merged
    if not has_accession and header.accession:
        rare["accession"] = header.accession
        has_accession = True
    if rare:
        connection.execute(update(_STUDY).where(_STUDY.c.id == study_id).values(rare))
    cache.studies[header.study_uid] = (study_id, merged, has_accession)
    cache.series[header.series_uid] = series_id
    is_image = header.is_image(uid_root)
    added = connection.execute(_ADD_INSTANCE[connection.dialect.name], {
        "study_id": study_id, "series_id": series_id, "sop_uid": header.sop_uid,
        "sop_class_uid": header.sop_class_uid, "transfer_syntax": header.transfer_syntax,
        "path": str(path), "size": size, "is_image": is_image,
        "instance_number": header.instance_number, "received_at": now, "receive_count": 1,
    })
    if added.first() is not None:  # a row back: inserted (none: the UID was known)
        connection.execute(
            _ADD_IMAGE_TO_STUDY if is_image else _ADD_TO_STUDY, {"study": study_id, "now": now}
        )
        return IndexResult(header.study_uid, new_instance=True, is_image=is_image)
    existing = connection.execute(_FIND_INSTANCE, {"sop_uid": header.sop_uid}).one()
    connection.execute(_REFRESH_INSTANCE, {
        "row_id": existing.id, "path": str(path), "size": size,
        "ts": header.transfer_syntax, "now": now, "study": study_id, "series": series_id,
    })
    connection.execute(_TOUCH_STUDY, {"study": study_id, "now": now})
    connection.execute(insert(_AUDIT).values(
        at=now, kind="instance.duplicate", study_uid=header.study_uid, actor="",
        details={
            "sop_uid": header.sop_uid, "transfer_syntax": header.transfer_syntax,
            "calling_aet": calling_aet, "receive_count": existing.receive_count + 1,
            "replaced_path": existing.path,
        },
    ))
    return IndexResult(header.study_uid, new_instance=False, is_image=existing.is_image)


def begin_write(db: Session | Connection) -> None:
    """Start a write transaction; on SQLite take the write lock first.

    A deferred SQLite transaction that reads and then writes fails at once (SQLITE_BUSY,
    no busy wait) when another process committed in between; BEGIN IMMEDIATE waits instead.
    """
    connection = connection_of(db)
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")
