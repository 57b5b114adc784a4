"""Apply a stored HL7 message to patients, visits, orders, labs and prior reports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, or_, select
from sqlalchemy.orm import Session

from radraft.core.db import LabResult, Order, Patient, PriorReport, Study, Visit
from radraft.core.errors import Hl7Error
from radraft.ehr.context import identity_mismatch
from radraft.ehr.er7 import Message

CANCEL_CODES = ("CA", "OC", "DC")
PATIENT_CACHE = "radraft.ehr.patients"
LAB_BUFFER = "radraft.ehr.labs"  # session.info key: lab rows the caller inserts in one go
PRIORITIES = {"S": "stat", "A": "asap", "R": "routine", "P": "preop", "T": "timing"}


@dataclass(frozen=True)
class OrderChange:
    accession: str
    study_uid: str
    status: str


def _patient(session: Session, msg: Message, now: datetime) -> Patient:
    pid = msg.first("PID")
    if pid is None:
        raise Hl7Error("no PID segment", segment="PID", code="100")
    patient_id = msg.field(pid, 3, 1)
    if not patient_id:
        raise Hl7Error("PID-3 (patient identifier) is empty", segment="PID", field=3, code="101")
    issuer = msg.field(pid, 3, 4)
    if len(patient_id) > 64 or len(issuer) > 64:
        raise Hl7Error("PID-3 identifier or assigning authority over 64 characters",
                       segment="PID", field=3, code="102")
    # Patients already seen in this transaction (a batch of messages), saving a query each:
    # the writer drops the cache whenever it rolls anything back.
    cache: dict[tuple[str, str], Patient] = session.info.setdefault(PATIENT_CACHE, {})
    patient = cache.get((patient_id, issuer))
    if patient is None:
        patient = session.scalars(select(Patient).where(
            Patient.patient_id == patient_id, Patient.issuer == issuer)).first()
    if patient is None:
        patient = Patient(patient_id=patient_id, issuer=issuer, updated_at=now)
        session.add(patient)
    # XPN family^given^middle^suffix^prefix: the outbound PID-5 repeats them all.
    name = "^".join(msg.field(pid, 5, c) for c in range(1, 6)).rstrip("^")
    patient.name = name[:256] or patient.name
    patient.birth_date = msg.field(pid, 7)[:8] or patient.birth_date
    patient.sex = msg.field(pid, 8)[:16] or patient.sex
    patient.updated_at = now
    if patient.id is None:
        session.flush()  # its id, for the rows that point at it
    cache[(patient_id, issuer)] = patient
    return patient


def _merge(session: Session, msg: Message, event: str) -> Patient | None:
    """MRG-1's patient, before PID-3's is looked up. A47 (identifier change): the MRG-1 row is
    renamed to PID-3 when PID-3 is not known yet (its orders, labs and priors follow); when
    both are known, and always for A40, the old one is merged into the new one afterwards."""
    mrg = msg.first("MRG")
    old_id = msg.field(mrg, 1, 1)
    if not old_id:
        raise Hl7Error(f"{event} needs MRG-1 (prior patient identifier)", segment="MRG",
                       field=1, code="101")
    old = session.scalars(select(Patient).where(
        Patient.patient_id == old_id, Patient.issuer == msg.field(mrg, 1, 4))).first()
    if old is None or event != "A47":
        return old
    pid = msg.first("PID")
    new_id, new_issuer = msg.field(pid, 3, 1), msg.field(pid, 3, 4)
    known = session.scalars(select(Patient).where(
        Patient.patient_id == new_id, Patient.issuer == new_issuer)).first()
    session.info.pop(PATIENT_CACHE, None)  # identities change below
    if known is None and new_id:
        old.patient_id, old.issuer = new_id[:64], new_issuer[:64]
        session.flush()
        return None
    return old


def _adt(session: Session, msg: Message, event: str, now: datetime) -> None:
    merged = _merge(session, msg, event) if event in ("A40", "A47") else None
    patient = _patient(session, msg, now)
    if event in ("A40", "A47"):
        if merged is not None and merged.id != patient.id:
            merged.merged_into_id = patient.id
        return
    pv1 = msg.first("PV1")
    if pv1 is None:
        return
    number = msg.field(pv1, 19)[:64]
    visit = session.scalars(select(Visit).where(
        Visit.patient_ref == patient.id, Visit.visit_number == number)).first()
    if visit is None:
        visit = Visit(patient_ref=patient.id, visit_number=number, updated_at=now)
        session.add(visit)
    visit.patient_class = msg.field(pv1, 2)[:8]
    visit.location = "^".join(p for p in (msg.field(pv1, 3, 1), msg.field(pv1, 3, 2)) if p)[:128]
    visit.admitted_at = msg.field(pv1, 44)[:32]
    if event == "A03":
        visit.discharged_at = msg.field(pv1, 45)[:32] or now.strftime("%Y%m%d%H%M%S")
    visit.diagnoses = [(msg.field(dg1, 3, 2) or msg.field(dg1, 3, 1))[:256]
                       for dg1 in msg.all("DG1")]
    visit.updated_at = now


def _order(session: Session, msg: Message, now: datetime) -> OrderChange:
    patient = _patient(session, msg, now)
    orc, obr = msg.first("ORC"), msg.first("OBR")
    accession = (msg.get("IPC", 1) or msg.field(obr, 18) or msg.field(obr, 3, 1)
                 or msg.field(orc, 3, 1))
    if not accession:
        raise Hl7Error("no accession number (IPC-1, OBR-18, OBR-3)", segment="OBR", field=18,
                       code="101")
    if len(accession) > 64:
        raise Hl7Error("accession number longer than 64 characters", segment="OBR", field=18,
                       code="102")
    order = session.scalars(select(Order).where(Order.accession == accession)).first()
    if order is None:
        order = Order(accession=accession, received_at=now, updated_at=now)
        session.add(order)
    order.patient_ref = patient.id
    order.placer_order_number = (msg.field(orc, 2, 1) or msg.field(obr, 2, 1))[:64]
    order.filler_order_number = (msg.field(orc, 3, 1) or msg.field(obr, 3, 1))[:64]
    study_uid = msg.get("ZDS", 1, 1) or msg.get("IPC", 3)
    if len(study_uid) > 64:
        raise Hl7Error("Study Instance UID longer than 64 characters",
                       segment="ZDS" if msg.get("ZDS", 1, 1) else "IPC",
                       field=1 if msg.get("ZDS", 1, 1) else 3, code="102")
    order.study_uid = study_uid or order.study_uid
    order.requested_procedure_id = (msg.get("IPC", 2) or msg.field(obr, 19))[:64]
    order.procedure_code = msg.field(obr, 4, 1)[:64]
    order.procedure_text = msg.field(obr, 4, 2)[:256]
    order.reason = msg.field(obr, 31, 2) or msg.field(obr, 31, 1) or msg.field(orc, 16, 2)
    order.department = (msg.field(orc, 17, 2) or msg.field(orc, 17, 1))[:128]
    order.location = msg.get("PV1", 3, 1)[:128]
    priority = msg.field(orc, 7, 6) or msg.field(obr, 27, 6) or msg.field(obr, 5)
    order.priority = PRIORITIES.get(priority, priority.lower() or "routine")[:16]
    order.ordering_provider = "^".join(p for p in (msg.field(orc, 12, 2), msg.field(orc, 12, 3))
                                       if p)[:256]
    if msg.field(orc, 1) in CANCEL_CODES:
        order.status = "cancelled"
    elif order.status is None:  # new: the column default is only applied at INSERT
        order.status = "active"
    order.updated_at = now
    _flag_mismatches(session, order, patient)
    return OrderChange(order.accession, order.study_uid, order.status)


def _flag_mismatches(session: Session, order: Order, patient: Patient) -> None:
    """A study already received under this accession or UID whose identity disagrees gets
    an admin flag now (ehr.context attaches nothing to it)."""
    conditions = [Study.accession == order.accession]
    if order.study_uid:
        conditions.append(Study.study_uid == order.study_uid)
    for study in session.scalars(select(Study).where(or_(*conditions))):
        reason = identity_mismatch(study, order, patient)
        if reason:
            study.admin_flag = reason


def _result(session: Session, msg: Message, message_id: int, now: datetime) -> list[OrderChange]:
    patient = _patient(session, msg, now)
    changes: list[OrderChange] = []
    obr = msg.first("OBR")
    text_lines = [msg.field(obx, 5) for obx in msg.all("OBX") if msg.field(obx, 2) in ("TX", "FT")]
    if text_lines:  # a narrative result: a (prior) radiology report
        accession = (msg.field(obr, 18) or msg.field(obr, 3, 1))[:64]
        text = "\n".join(text_lines)
        impression = text.split("IMPRESSION:", 1)[-1].strip() if "IMPRESSION:" in text else ""
        session.add(PriorReport(
            patient_ref=patient.id, accession=accession,
            procedure_text=msg.field(obr, 4, 2)[:256], result_status=msg.field(obr, 25)[:4],
            text=text, impression=impression,
            message_id=message_id, observed_at=_when(msg.field(obr, 7))))
        order = session.scalars(select(Order).where(Order.accession == accession)).first()
        if order is not None and msg.field(obr, 25) == "F" and order.status != "cancelled":
            order.status = "final"
            order.updated_at = now
            changes.append(OrderChange(order.accession, order.study_uid, order.status))
        return changes
    labs: list[dict[str, Any]] = []
    for obx in msg.all("OBX"):
        # Some senders (seen from a Cerner feed) leave out OBX-4, shifting every later field
        # one to the left: a numeric result whose OBX-5 is not a number but OBX-4 is.
        at = 4 if msg.field(obx, 2) == "NM" and _number(msg.field(obx, 4)) and not _number(
            msg.field(obx, 5)) else 5
        units, units_text = msg.field(obx, at + 1, 1), msg.field(obx, at + 1, 2)
        labs.append({
            "patient_ref": patient.id, "code": msg.field(obx, 3, 1)[:64],
            "coding_system": msg.field(obx, 3, 3)[:32],
            "name": msg.field(obx, 3, 2)[:256], "value": msg.field(obx, at)[:256],
            # a local code ("CD:289^mg/dL") is no unit: its text is
            "units": (units_text if units_text and ":" in units else units or units_text)[:64],
            "reference_range": msg.field(obx, at + 2)[:64],
            "abnormal_flags": msg.field(obx, at + 3)[:16], "status": msg.field(obx, at + 6)[:4],
            "observed_at": _when(msg.field(obx, at + 9) or msg.field(obr, 7)),
            "message_id": message_id})
    buffer = session.info.get(LAB_BUFFER)
    if buffer is not None:  # the writer inserts a whole batch's labs at once
        buffer.extend(labs)
    elif labs:
        session.execute(insert(LabResult), labs)
    return changes


def _number(value: str) -> bool:
    try:
        float(value.lstrip("<>="))
    except ValueError:
        return False
    return True


def _when(value: str) -> datetime | None:
    """An HL7 DTM (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]), taken as UTC: these times feed
    day-scale recency windows, where a time zone's hours do not matter. The format follows the
    length: strptime alone would read "20251201" as 2025-01-02 00:01."""
    digits = value.split("+")[0].split("-")[0].split(".")[0].strip()
    formats = {14: "%Y%m%d%H%M%S", 12: "%Y%m%d%H%M", 10: "%Y%m%d%H", 8: "%Y%m%d", 6: "%Y%m",
               4: "%Y"}
    if not digits.isdigit() or len(digits) not in formats:
        return None
    try:
        return datetime.strptime(digits, formats[len(digits)]).replace(tzinfo=UTC)
    except ValueError:
        return None


def apply_message(
    session: Session, msg: Message, message_id: int, now: datetime,
) -> list[OrderChange]:
    """Apply one message in the caller's transaction; the order changes it made."""
    kind, event = msg.get("MSH", 9, 1), msg.get("MSH", 9, 2)
    if kind == "ADT":
        _adt(session, msg, event, now)
        return []
    if kind in ("ORM", "OMI", "OMG"):
        return [_order(session, msg, now)]
    if kind == "ORU":
        return _result(session, msg, message_id, now)
    return []  # other types are stored and acknowledged, not applied
