"""What a draft reads from the database besides the images: the order, the patient, the
predecessor draft and the destinations (all read inside the claiming session)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from radraft.core.db import Draft, Job, Order, Patient, Study
from radraft.core.settings import Settings
from radraft.core.types import JobKey, Priority
from radraft.ehr.outbound import OrderInfo, PatientInfo, patient_from_xpn


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
    # The store keeps PID-5 as XPN components; every one goes back out (middle, suffix...).
    return patient_from_xpn(patient.patient_id, patient.name,
                            assigning_authority=patient.issuer,
                            birth_date=patient.birth_date, sex=patient.sex or "U")


def latest_order(session: Session, study: Study) -> Order | None:
    conditions = [Order.study_uid == study.study_uid]
    if study.accession:
        conditions.append(Order.accession == study.accession)
    return session.scalars(
        select(Order).where(or_(*conditions)).order_by(Order.updated_at.desc())
    ).first()


def predecessor(session: Session, job: Job) -> Draft | None:
    """The newest earlier draft of this study and profile (the SR this one supersedes)."""
    return session.scalars(select(Draft).where(
        Draft.study_uid == job.study_uid, Draft.profile == job.profile, Draft.job_id != job.id,
    ).order_by(Draft.created_at.desc(), Draft.id.desc())).first()


def destinations(settings: Settings, job_destinations: Sequence[str], profile: str) -> list[str]:
    """The job's destinations (all configured ones when it names none); HL7 ones only when
    the profile sends HL7."""
    names = list(job_destinations) or list(settings.destinations)
    if not settings.profiles[profile].send_hl7:
        names = [n for n in names if settings.destinations[n].kind != "hl7"]
    return [n for n in names if n in settings.destinations]
