"""The parts every outbound result message shares: MSH, PID, PV1, ORC, OBR, NTE.

Built with hl7apy's object API at STRICT validation for HL7 v2.5.1; values are ER7-escaped
component by component before hl7apy parses them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Group, Message
from hl7apy.exceptions import HL7apyException

from radraft.core.errors import OutputBuildError
from radraft.core.settings import Hl7Destination, Settings
from radraft.core.uids import control_id
from radraft.ehr.outbound.er7 import components, encode, escape, hl7_timestamp
from radraft.ehr.outbound.types import OrderInfo, PatientInfo

HL7_VERSION = "2.5.1"
AI_NOTICE = "AI-generated draft, not reviewed by a radiologist."
REDRAFT_NOTICE = (
    "Re-draft: replaces the earlier AI draft for this order (the study gained new images)."
)
SENDING_APPLICATION = "RADRAFT"


@dataclass(frozen=True, slots=True)
class MessageParts:
    """A message under construction and its order-observation group."""

    message: Message
    order_group: Group


def start_result(
    *, kind: str, order: OrderInfo, patient: PatientInfo, settings: Settings,
    destination: Hl7Destination, job_key: tuple[str, str, str], now: datetime,
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
    try:
        msg = Message("ORU_R01", version=HL7_VERSION, validation_level=VALIDATION_LEVEL.STRICT)
        msh = msg.msh
        msh.msh_3 = escape(SENDING_APPLICATION)
        msh.msh_4 = escape(settings.site.name[:20])
        if destination.receiving_application:
            msh.msh_5 = escape(destination.receiving_application)
        if destination.receiving_facility:
            msh.msh_6 = escape(destination.receiving_facility)
        msh.msh_7 = stamp
        msh.msh_9 = "ORU^R01^ORU_R01"
        msh.msh_10 = control_id(*job_key, kind, destination.host, str(destination.port))
        msh.msh_11 = "P"
        msh.msh_12 = HL7_VERSION
        if destination.charset:
            msh.msh_18 = escape(destination.charset)
        result = msg.add_group("ORU_R01_PATIENT_RESULT")
        pat = result.add_group("ORU_R01_PATIENT")
        pat.pid.pid_1 = "1"
        pat.pid.pid_3 = components(patient.patient_id, "", "", patient.assigning_authority, "MR")
        if patient.family_name or patient.given_name:
            pat.pid.pid_5 = components(patient.family_name, patient.given_name)
        if patient.birth_date:
            pat.pid.pid_7 = escape(patient.birth_date)
        if patient.sex:
            pat.pid.pid_8 = escape(patient.sex)
        visit = pat.add_group("ORU_R01_VISIT")
        visit.pv1.pv1_1 = "1"
        visit.pv1.pv1_2 = escape(order.patient_class or "U")
        if order.location:
            visit.pv1.pv1_3 = components(order.location)
        if order.visit_number:
            visit.pv1.pv1_19 = components(order.visit_number)
        group = result.add_group("ORU_R01_ORDER_OBSERVATION")
        orc = group.orc
        orc.orc_1 = "RE"
        if order.placer_order_number:
            orc.orc_2 = components(order.placer_order_number)
        if order.filler_order_number:
            orc.orc_3 = components(order.filler_order_number)
        orc.orc_5 = "IP"
        obr = group.obr
        obr.obr_1 = "1"
        if order.placer_order_number:
            obr.obr_2 = components(order.placer_order_number)
        if order.filler_order_number:
            obr.obr_3 = components(order.filler_order_number)
        obr.obr_4 = components(
            order.procedure_code or "IMG", order.procedure_text or "Imaging study",
            order.procedure_coding_system or "L",
        )
        obr.obr_7 = stamp
        if order.ordering_provider:
            obr.obr_16 = order.ordering_provider  # already ER7 components
        obr.obr_18 = escape(order.accession)
        if order.requested_procedure_id:
            obr.obr_19 = escape(order.requested_procedure_id)
        obr.obr_22 = stamp
        if order.modality:
            obr.obr_24 = escape(order.modality)
        obr.obr_25 = destination.result_status
        return MessageParts(msg, group)
    except HL7apyException as exc:
        raise OutputBuildError(f"building the HL7 {kind} message failed: {exc}") from exc


def add_note(parts: MessageParts, set_id: int, text: str) -> None:
    """An NTE under the OBR (NTE-2 L: comment from the ancillary, i.e. radraft)."""
    nte = parts.order_group.add_segment("NTE")
    nte.nte_1 = str(set_id)
    nte.nte_2 = "L"
    nte.nte_3 = escape(text)


def add_observation(
    parts: MessageParts, *, set_id: int, code: tuple[str, str, str], sub_id: int,
    text: str, status: str, abnormal_flag: str = "", now: str = "",
) -> None:
    """One OBX of type TX holding one line (a multi-line text takes consecutive sub-ids)."""
    obs = parts.order_group.add_group("ORU_R01_OBSERVATION")
    obx = obs.obx
    obx.obx_1 = str(set_id)
    obx.obx_2 = "TX"
    obx.obx_3 = components(*code)
    obx.obx_4 = str(sub_id)
    obx.obx_5 = escape(text)
    if abnormal_flag:
        obx.obx_8 = abnormal_flag
    obx.obx_11 = status
    if now:
        obx.obx_14 = now


def finish(parts: MessageParts, destination: Hl7Destination) -> bytes:
    """Validate strictly and encode per MSH-18 (segments separated by \\r)."""
    try:
        parts.message.validate()
        er7 = parts.message.to_er7()
    except HL7apyException as exc:
        raise OutputBuildError(f"the HL7 message does not validate: {exc}") from exc
    return encode(er7 + "\r", destination.charset)
