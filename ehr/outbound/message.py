"""The parts every outbound result message shares: MSH, PID, PV1, ORC, OBR, NTE.

Built with hl7apy's object API at STRICT validation for HL7 v2.5.1; values are ER7-escaped
component by component before hl7apy parses them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Group, Message
from hl7apy.exceptions import HL7apyException

from radraft.core.errors import OutputBuildError
from radraft.core.settings import Hl7Destination, Settings
from radraft.core.types import JobKey
from radraft.core.uids import control_id
from radraft.ehr.outbound.er7 import components, encode, escape, hl7_timestamp
from radraft.ehr.outbound.types import OrderInfo, PatientInfo

HL7_VERSION = "2.5.1"
AI_NOTICE = "AI-generated draft, not reviewed by a radiologist."
REDRAFT_NOTICE = (
    "Re-draft: replaces the earlier AI draft for this order (the study gained new images)."
)
SENDING_APPLICATION = "RADRAFT"
HD_LENGTH = 20  # HD namespace id (MSH-4, CX-4)
ST_LENGTH = 199  # ST components (names, descriptions)


@dataclass(frozen=True, slots=True)
class MessageParts:
    """A message under construction and its order-observation group."""

    message: Message
    order_group: Group


def start_result(
    *, kind: str, order: OrderInfo, patient: PatientInfo, settings: Settings,
    destination: Hl7Destination, job_key: JobKey, now: datetime,
    message_type: str = "ORU^R01",
) -> MessageParts:
    """MSH, PID, PV1, ORC and OBR of an ORU^R01 (`kind` salts the control id)."""
    if message_type.replace(" ", "") not in ("ORU^R01", "ORU^R01^ORU_R01"):
        raise OutputBuildError(
            f"HL7 message type {message_type!r} is not supported (ORU^R01 only)"
        )
    if not order.accession and not (order.placer_order_number or order.filler_order_number):
        raise OutputBuildError("an HL7 result needs the order's accession or order numbers")
    stamp = hl7_timestamp(now, settings.site.timezone)
    msg = Message("ORU_R01", version=HL7_VERSION, validation_level=VALIDATION_LEVEL.STRICT)
    msh = msg.msh
    put(msh, "msh_3", escape(SENDING_APPLICATION))
    put(msh, "msh_4", fit(settings.site.name, HD_LENGTH))
    if destination.receiving_application:
        put(msh, "msh_5", escape(destination.receiving_application))
    if destination.receiving_facility:
        put(msh, "msh_6", escape(destination.receiving_facility))
    put(msh, "msh_7", stamp)
    put(msh, "msh_9", "ORU^R01^ORU_R01")
    put(msh, "msh_10", control_id(*job_key, kind, destination.host, str(destination.port)))
    put(msh, "msh_11", "P")
    put(msh, "msh_12", HL7_VERSION)
    if destination.charset:
        put(msh, "msh_18", escape(destination.charset))
    result = msg.add_group("ORU_R01_PATIENT_RESULT")
    pat = result.add_group("ORU_R01_PATIENT")
    pid = pat.pid
    put(pid, "pid_1", "1")
    put(pid, "pid_3", components(patient.patient_id, "", "", patient.assigning_authority, "MR"))
    if any(patient.xpn()):
        # Every name component: a middle name or suffix may be what tells two patients apart.
        put(pid, "pid_5", "^".join(fit(part, ST_LENGTH) for part in patient.xpn()).rstrip("^"))
    else:
        put(pid, "pid_5", '""')  # required field, name unknown: the HL7 null value
    if patient.birth_date:
        put(pid, "pid_7", escape(patient.birth_date))
    if patient.sex:
        put(pid, "pid_8", escape(patient.sex))
    pv1 = pat.add_group("ORU_R01_VISIT").pv1
    put(pv1, "pv1_1", "1")
    put(pv1, "pv1_2", escape(order.patient_class or "U"))
    if order.location:
        # PL-9 location description: the order's location as text, whatever its shape.
        put(pv1, "pv1_3", "^" * 8 + fit(order.location, ST_LENGTH))
    if order.visit_number:
        put(pv1, "pv1_19", components(order.visit_number))
    group = result.add_group("ORU_R01_ORDER_OBSERVATION")
    orc = group.orc
    put(orc, "orc_1", "RE")
    if order.placer_order_number:
        put(orc, "orc_2", components(order.placer_order_number))
    if order.filler_order_number:
        put(orc, "orc_3", components(order.filler_order_number))
    put(orc, "orc_5", "IP")
    obr = group.obr
    put(obr, "obr_1", "1")
    if order.placer_order_number:
        put(obr, "obr_2", components(order.placer_order_number))
    if order.filler_order_number:
        put(obr, "obr_3", components(order.filler_order_number))
    # The order's code, else (a procedure known from the header only) its text with no
    # code: a made-up identifier would be a fact without a source.
    code = order.procedure_code.strip()
    put(obr, "obr_4", "^".join((
        escape(code), fit(order.procedure_text or "Imaging study", ST_LENGTH),
        escape(order.procedure_coding_system or "L") if code else "",
    )).rstrip("^"))
    observed = observation_stamp(order, settings.site.timezone)
    if observed:
        put(obr, "obr_7", observed)  # the exam's time, not the draft's
    if order.ordering_provider:
        put(obr, "obr_16", order.ordering_provider)  # already ER7 components
    put(obr, "obr_18", escape(order.accession))
    if order.requested_procedure_id:
        put(obr, "obr_19", escape(order.requested_procedure_id))
    put(obr, "obr_22", stamp)  # results reported (the draft's time, like MSH-7)
    service = diagnostic_service(order.modality, destination)
    if service:
        put(obr, "obr_24", service)
    put(obr, "obr_25", destination.result_status)
    return MessageParts(msg, group)


# DICOM modality -> HL7 table 0074 diagnostic service section (v2.5.1). PT is not "PT"
# (Physical Therapy) and MR is not a 0074 value: NMR (nuclear magnetic resonance).
DIAGNOSTIC_SERVICE = {
    "CT": "CT", "MR": "NMR", "PT": "NMS", "NM": "NMS", "US": "RUS", "IVUS": "VUS",
    "CR": "RAD", "DX": "RAD", "MG": "RAD", "RF": "RAD", "XA": "RAD", "DR": "RAD",
}


def diagnostic_service(modality: str, destination: Hl7Destination) -> str:
    """OBR-24 for a DICOM modality: the destination's `diagnostic_service` entry, else the
    table above, else RAD (radiology) for any other imaging modality; empty if unknown."""
    key = modality.strip().upper()
    if not key:
        return ""
    return destination.diagnostic_service.get(key) or DIAGNOSTIC_SERVICE.get(key, "RAD")


def observation_stamp(order: OrderInfo, timezone: str) -> str:
    """OBR-7 / OBX-14: when the exam was performed (the order's `observed_at`), "" if not
    known. A header date without a time goes as a date (DTM allows it)."""
    if order.observed_at is None:
        return ""
    if order.observed_date_only:
        return order.observed_at.strftime("%Y%m%d")
    return hl7_timestamp(order.observed_at, timezone)


def put(segment: Any, field: str, value: str) -> None:
    """Assign one field; a value its data type refuses is an error naming the field.

    The message names the field and the length only: values may be PHI (names).
    """
    try:
        setattr(segment, field, value)
    except HL7apyException as exc:
        name = field.upper().replace("_", "-")
        raise OutputBuildError(
            f"HL7 {name} does not fit its data type ({type(exc).__name__}, "
            f"{len(value)} characters)"
        ) from None


def fit(text: str, limit: int) -> str:
    """Free text escaped, shortened with "..." so the escaped form fits `limit` characters."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    cut = text[:limit]
    while cut and len(escape(cut + "...")) > limit:
        cut = cut[:-1]
    return escape(cut + "...")


def add_note(parts: MessageParts, set_id: int, text: str) -> None:
    """An NTE under the OBR (NTE-2 L: comment from the ancillary, i.e. radraft)."""
    nte = parts.order_group.add_segment("NTE")
    put(nte, "nte_1", str(set_id))
    put(nte, "nte_2", "L")
    put(nte, "nte_3", escape(text))


def add_observation(
    parts: MessageParts, *, set_id: int, code: tuple[str, str, str], sub_id: int,
    text: str, status: str, abnormal_flag: str = "", now: str = "",
) -> None:
    """One OBX of type TX holding one line (a multi-line text takes consecutive sub-ids)."""
    obs = parts.order_group.add_group("ORU_R01_OBSERVATION")
    obx = obs.obx
    put(obx, "obx_1", str(set_id))
    put(obx, "obx_2", "TX")
    put(obx, "obx_3", components(*code))
    put(obx, "obx_4", str(sub_id))
    put(obx, "obx_5", escape(text))
    if abnormal_flag:
        put(obx, "obx_8", abnormal_flag)
    put(obx, "obx_11", status)
    if now:
        put(obx, "obx_14", now)


def finish(parts: MessageParts, destination: Hl7Destination) -> bytes:
    """Validate strictly and encode per MSH-18 (segments separated by \\r)."""
    try:
        parts.message.validate()
        er7 = parts.message.to_er7()
    except HL7apyException as exc:
        # hl7apy's message may quote field values (PHI): only structural ones are repeated.
        detail = str(exc) if str(exc).startswith("Missing required child") else ""
        raise OutputBuildError(
            f"the HL7 message does not validate against 2.5.1 ({type(exc).__name__}"
            f"{': ' + detail if detail else ''})"
        ) from None
    return encode(er7 + "\r", destination.charset)
