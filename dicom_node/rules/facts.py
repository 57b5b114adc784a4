"""The facts rules are matched against: one study, its series and (when known) its order."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from radraft.core.db import Order, Patient, Series, Study
from radraft.core.errors import ConfigError
from radraft.dicom_node.errors import StoreRefused
from radraft.dicom_node.header.reading import read_stored_header

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StudyFacts:
    """Everything a rule may look at. Order fields are None when no order is known."""

    study_uid: str
    modalities: frozenset[str] = frozenset()
    body_parts: frozenset[str] = frozenset()
    study_description: str = ""
    calling_aet: str = ""
    institution: str = ""
    patient_age_years: int | None = None
    series_count: int = 0
    accession: str = ""
    order_department: str | None = None
    order_priority: str | None = None
    order_reason: str | None = None
    order_location: str | None = None
    # When the decision is taken (rule time windows use it in the site time zone).
    now: datetime = field(default_factory=lambda: datetime.now(UTC))


def _upper_set(values: list[str]) -> frozenset[str]:
    return frozenset(v.strip().upper() for v in values if v and v.strip())


def _order_for(session: Session, study: Study) -> Order | None:
    """The study's order, when its identity agrees (as ehr.context decides): accession AND
    Study Instance UID (when the order names one), PID-3 + issuer vs PatientID + issuer. A
    disagreeing order is not used: the rules see the study as having no order."""
    conditions = [Order.study_uid == study.study_uid]
    if study.accession:
        conditions.append(and_(Order.accession == study.accession,
                               Order.study_uid.in_(("", study.study_uid))))
    order = session.scalars(
        select(Order).where(or_(*conditions)).order_by(Order.updated_at.desc())
    ).first()
    if order is None or (study.accession and order.accession != study.accession):
        return None
    patient = session.get(Patient, order.patient_ref) if order.patient_ref else None
    if patient is not None and study.patient_id and (
            patient.patient_id != study.patient_id or (
                patient.issuer and study.issuer_of_patient_id
                and patient.issuer != study.issuer_of_patient_id)):
        return None
    return order


def facts_for_study(
    session: Session, study_uid: str, *, now: datetime | None = None,
) -> StudyFacts:
    """Facts from the Study/Series rows and the imaging_order row (by study UID or accession)."""
    study = session.scalars(select(Study).where(Study.study_uid == study_uid)).first()
    if study is None:
        raise LookupError(f"study {study_uid} is not in the index")
    series = session.scalars(select(Series).where(Series.study_id == study.id)).all()
    order = _order_for(session, study)
    modalities = [s.modality for s in series] + study.modalities.split("\\")
    return StudyFacts(
        study_uid=study.study_uid,
        modalities=_upper_set(modalities),
        body_parts=_upper_set([s.body_part for s in series] + [study.body_part]),
        study_description=study.study_description,
        calling_aet=study.calling_aet,
        institution=study.institution,
        patient_age_years=study.patient_age_years,
        series_count=len(series),
        accession=study.accession,
        order_department=order.department if order else None,
        order_priority=order.priority if order else None,
        order_reason=order.reason if order else None,
        order_location=order.location if order else None,
        now=now or datetime.now(UTC),
    )


def facts_from_folder(
    path: Path, *, calling_aet: str = "", now: datetime | None = None,
) -> StudyFacts:
    """Facts from a folder of DICOM files (`radraft rules test`); no database, no order."""
    files = [p for p in sorted(path.rglob("*")) if p.is_file()] if path.is_dir() else [path]
    headers = []
    for file in files:
        try:
            headers.append(read_stored_header(file))
        except StoreRefused:
            log.debug("skipping %s: not a readable DICOM instance", file)
    if not headers:
        raise ConfigError(f"{path}: no DICOM instance found")
    study_uids = {h.study_uid for h in headers}
    if len(study_uids) > 1:
        raise ConfigError(f"{path}: holds {len(study_uids)} studies; give one study's folder")
    first = headers[0]
    return StudyFacts(
        study_uid=first.study_uid,
        modalities=_upper_set([h.modality for h in headers]),
        body_parts=_upper_set([h.body_part for h in headers]),
        study_description=first.study_description,
        calling_aet=calling_aet,
        institution=first.institution,
        patient_age_years=first.patient_age_years,
        series_count=len({h.series_uid for h in headers}),
        accession=first.accession,
        now=now or datetime.now(UTC),
    )
