"""Knowing when a study is complete: MPPS steps, storage-commitment requests, prior prefetch.

All three are database rows so a restart of the node (between N-CREATE and N-SET, between
an N-ACTION and its report, between an order and its study) loses nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from radraft.core.db.base import Base

UID = String(64)


class MppsStep(Base):
    """One Modality Performed Procedure Step (PS3.4 F.7), as N-CREATE and N-SETs left it."""

    __tablename__ = "mpps_step"

    id: Mapped[int] = mapped_column(primary_key=True)
    sop_uid: Mapped[str] = mapped_column(UID, unique=True)
    # From the Scheduled Step Attribute Sequence (first item): the study the step performs.
    study_uid: Mapped[str] = mapped_column(UID, default="", index=True)
    accession: Mapped[str] = mapped_column(String(64), default="")
    modality: Mapped[str] = mapped_column(String(16), default="")
    # IN PROGRESS | COMPLETED | DISCONTINUED (Performed Procedure Step Status, as sent)
    status: Mapped[str] = mapped_column(String(16))
    calling_aet: Mapped[str] = mapped_column(String(16), default="")
    # The step's attributes in DICOM JSON (PS3.18 F.2): N-SETs are applied to it.
    dataset: Mapped[str] = mapped_column(Text, default="{}")
    # Discontinuation reason (CID 9300), when DISCONTINUED with one.
    discontinued_code: Mapped[str] = mapped_column(String(64), default="")
    discontinued_meaning: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    final_at: Mapped[datetime | None] = mapped_column(default=None)
    # Set once the completeness monitor is done with this step (instances arrived, or a
    # timeout reported): a study with an unsettled step is not announced by the timer.
    settled_at: Mapped[datetime | None] = mapped_column(default=None)
    settle_note: Mapped[str] = mapped_column(String(256), default="")


class MppsInstance(Base):
    """One instance a step lists (Performed Series Sequence > Referenced Image Sequence)."""

    __tablename__ = "mpps_instance"

    id: Mapped[int] = mapped_column(primary_key=True)
    step_id: Mapped[int] = mapped_column(
        ForeignKey("mpps_step.id", ondelete="CASCADE"), index=True)
    series_uid: Mapped[str] = mapped_column(UID, default="")
    sop_class_uid: Mapped[str] = mapped_column(UID, default="")
    sop_uid: Mapped[str] = mapped_column(UID, index=True)

    __table_args__ = (UniqueConstraint("step_id", "sop_uid"),)


class CommitmentRequest(Base):
    """One Storage Commitment Push Model N-ACTION and the state of its N-EVENT-REPORT."""

    __tablename__ = "commitment_request"

    id: Mapped[int] = mapped_column(primary_key=True)
    transaction_uid: Mapped[str] = mapped_column(UID)
    calling_aet: Mapped[str] = mapped_column(String(16))
    # [[sop_class_uid, sop_uid], ...] as requested (Referenced SOP Sequence)
    items: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # pending | reported | failed (gave up after commitment_max_attempts; an admin looks)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    # {"success": n, "failure": n, "via": "same association" | "new association"}
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    last_error: Mapped[str] = mapped_column(Text, default="")
    requested_at: Mapped[datetime]
    reported_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (UniqueConstraint("calling_aet", "transaction_uid"),)


class PriorPrefetch(Base):
    """Priors fetched from the PACS when an order arrived, before its study (one per order)."""

    __tablename__ = "prior_prefetch"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("imaging_order.id", ondelete="CASCADE"),
                                          unique=True)
    patient_id: Mapped[str] = mapped_column(String(64), default="")
    issuer: Mapped[str] = mapped_column(String(64), default="")
    profile: Mapped[str] = mapped_column(String(64), default="")
    # queued | running | done | failed
    state: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    # Study UIDs chosen as relevant, and how many of them were already held.
    chosen: Mapped[list[str]] = mapped_column(JSON, default=list)
    held: Mapped[int] = mapped_column(default=0)
    retrieved: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
