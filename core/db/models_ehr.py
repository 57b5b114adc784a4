"""What the EHR told radraft over HL7: raw messages, patients, visits, orders, results."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from radraft.core.db.base import Base


class Hl7Message(Base):
    """A received HL7 message, stored raw and committed before it is acknowledged."""

    __tablename__ = "hl7_message"

    id: Mapped[int] = mapped_column(primary_key=True)
    control_id: Mapped[str] = mapped_column(String(64), index=True)
    sending_application: Mapped[str] = mapped_column(String(128), default="")
    sending_facility: Mapped[str] = mapped_column(String(128), default="")
    message_type: Mapped[str] = mapped_column(String(16), default="")
    version: Mapped[str] = mapped_column(String(16), default="")
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    peer: Mapped[str] = mapped_column(String(64), default="")
    received_at: Mapped[datetime]
    applied_at: Mapped[datetime | None] = mapped_column(default=None)
    ack_code: Mapped[str] = mapped_column(String(2), default="")
    error: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (UniqueConstraint("control_id", "sending_facility", "sha256"),)


class Patient(Base):
    __tablename__ = "patient"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(64))
    issuer: Mapped[str] = mapped_column(String(64), default="")
    # PHI: shown only behind login, never logged.
    name: Mapped[str] = mapped_column(String(256), default="")
    birth_date: Mapped[str] = mapped_column(String(8), default="")
    sex: Mapped[str] = mapped_column(String(16), default="")
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("patient.id"), default=None)
    updated_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("patient_id", "issuer"),)


class Visit(Base):
    __tablename__ = "visit"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_ref: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    visit_number: Mapped[str] = mapped_column(String(64), default="")
    patient_class: Mapped[str] = mapped_column(String(8), default="")
    location: Mapped[str] = mapped_column(String(128), default="")
    admitted_at: Mapped[str] = mapped_column(String(32), default="")
    discharged_at: Mapped[str] = mapped_column(String(32), default="")
    diagnoses: Mapped[list[Any]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime]


class Order(Base):
    __tablename__ = "imaging_order"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_ref: Mapped[int | None] = mapped_column(ForeignKey("patient.id"), default=None)
    accession: Mapped[str] = mapped_column(String(64), index=True)
    placer_order_number: Mapped[str] = mapped_column(String(64), default="")
    filler_order_number: Mapped[str] = mapped_column(String(64), default="")
    study_uid: Mapped[str] = mapped_column(String(64), default="", index=True)
    requested_procedure_id: Mapped[str] = mapped_column(String(64), default="")
    procedure_code: Mapped[str] = mapped_column(String(64), default="")
    procedure_text: Mapped[str] = mapped_column(String(256), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    department: Mapped[str] = mapped_column(String(128), default="")
    location: Mapped[str] = mapped_column(String(128), default="")
    priority: Mapped[str] = mapped_column(String(16), default="routine")
    ordering_provider: Mapped[str] = mapped_column(String(256), default="")
    # active | cancelled | final (the RIS reported a final result: no more re-drafts)
    status: Mapped[str] = mapped_column(String(16), default="active")
    received_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class LabResult(Base):
    __tablename__ = "lab_result"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_ref: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    coding_system: Mapped[str] = mapped_column(String(32), default="")
    name: Mapped[str] = mapped_column(String(256), default="")
    value: Mapped[str] = mapped_column(String(256), default="")
    units: Mapped[str] = mapped_column(String(64), default="")
    reference_range: Mapped[str] = mapped_column(String(64), default="")
    abnormal_flags: Mapped[str] = mapped_column(String(16), default="")
    status: Mapped[str] = mapped_column(String(4), default="")
    observed_at: Mapped[datetime | None] = mapped_column(default=None)
    message_id: Mapped[int] = mapped_column(ForeignKey("hl7_message.id"))


class PriorReport(Base):
    __tablename__ = "prior_report"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_ref: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    accession: Mapped[str] = mapped_column(String(64), default="", index=True)
    procedure_text: Mapped[str] = mapped_column(String(256), default="")
    result_status: Mapped[str] = mapped_column(String(4), default="")
    text: Mapped[str] = mapped_column(Text, default="")
    impression: Mapped[str] = mapped_column(Text, default="")
    observed_at: Mapped[datetime | None] = mapped_column(default=None)
    message_id: Mapped[int] = mapped_column(ForeignKey("hl7_message.id"))
