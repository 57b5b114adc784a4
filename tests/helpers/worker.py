"""The worker tests' rows and settings: stored studies as index rows, StudyStable, settings."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydicom import dcmread
from sqlalchemy.orm import Session

from radraft.core.db import Instance, Series, Study
from radraft.core.settings import Settings
from radraft.core.types import StudyStable


def index_folder(session: Session, folder: Path, *, accession: str = "") -> Study:
    """Add Study/Series/Instance rows for the DICOM files under `folder` (no node needed)."""
    now = datetime.now(UTC)
    study: Study | None = None
    series: dict[str, Series] = {}
    for path in sorted(folder.rglob("*.dcm")):
        ds = dcmread(path, stop_before_pixels=True)
        if study is None:
            study = Study(
                study_uid=str(ds.StudyInstanceUID), patient_id=str(ds.get("PatientID", "")),
                accession=accession or str(ds.get("AccessionNumber", "")),
                study_date=str(ds.get("StudyDate", "")), modalities=str(ds.Modality),
                first_received_at=now, last_received_at=now,
            )
            session.add(study)
            session.flush()
        uid = str(ds.SeriesInstanceUID)
        if uid not in series:
            series[uid] = Series(study_id=study.id, series_uid=uid, modality=str(ds.Modality),
                                 series_number=_number(ds, "SeriesNumber"))
            session.add(series[uid])
            session.flush()
        session.add(Instance(
            study_id=study.id, series_id=series[uid].id, sop_uid=str(ds.SOPInstanceUID),
            sop_class_uid=str(ds.SOPClassUID), path=str(path), received_at=now,
            instance_number=_number(ds, "InstanceNumber"),
        ))
        study.image_count += 1
        study.instance_count += 1
    assert study is not None, f"no DICOM file under {folder}"
    session.commit()
    return study


def _number(ds: Any, keyword: str) -> int | None:
    """IS as the node's index keeps it (dicom_node.header): an int, or None."""
    value = ds.get(keyword)
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def stable_of(study: Study, version: str = "v1") -> StudyStable:
    now = datetime.now(UTC)
    return StudyStable(study.study_uid, version, study.instance_count, study.image_count,
                       "SCU", now, now)


def worker_settings(tmp: Path, db_url: str, **extra: Any) -> Settings:
    data: dict[str, Any] = {
        "data_dir": tmp / "data", "database_url": db_url,
        "broker_url": "memory://",
        "destinations": {"folder": {"kind": "folder", "path": str(tmp / "outbox")}},
    }
    data.update(extra)
    return Settings(**data)
