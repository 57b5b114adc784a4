"""Jobs, drafts and the delivery outbox: the source of truth the broker only wakes up."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from radraft.core.db.base import Base

UID = String(64)


class Job(Base):
    """One drafting job, keyed by (study, version, profile): enqueuing twice drafts once."""

    __tablename__ = "job"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_uid: Mapped[str] = mapped_column(UID, index=True)
    version: Mapped[str] = mapped_column(String(64))
    profile: Mapped[str] = mapped_column(String(64))
    priority: Mapped[str] = mapped_column(String(16), default="routine")
    destinations: Mapped[list[str]] = mapped_column(JSON, default=list)
    rule_name: Mapped[str] = mapped_column(String(128), default="")
    # The rule's mode when the job was created: live | shadow (issue 21)
    mode: Mapped[str] = mapped_column(String(8), default="live")
    # queued | running | done | failed | cancelled | superseded
    state: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=3)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str] = mapped_column(Text, default="")
    worker: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    timings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (
        UniqueConstraint("study_uid", "version", "profile"),
        Index("ix_job_due", "state", "next_attempt_at"),
    )


class Draft(Base):
    """The model's draft of one job, with the built outputs' identities."""

    __tablename__ = "draft"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("job.id"), unique=True)
    study_uid: Mapped[str] = mapped_column(UID, index=True)
    version: Mapped[str] = mapped_column(String(64))
    profile: Mapped[str] = mapped_column(String(64))
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
    rendered_text: Mapped[str] = mapped_column(Text, default="")
    rendered_html: Mapped[str] = mapped_column(Text, default="")
    triage_level: Mapped[str] = mapped_column(String(16), default="routine")
    sr_uid: Mapped[str] = mapped_column(UID, default="")
    tid1500_uid: Mapped[str] = mapped_column(UID, default="")
    kos_uid: Mapped[str] = mapped_column(UID, default="")
    predecessor_id: Mapped[int | None] = mapped_column(ForeignKey("draft.id"), default=None)
    model_name: Mapped[str] = mapped_column(String(128), default="")
    prompt_sha256: Mapped[str] = mapped_column(String(64), default="")
    frame_count: Mapped[int] = mapped_column(default=0)
    segments: Mapped[list[Any]] = mapped_column(JSON, default=list)
    contact_sheet_path: Mapped[str] = mapped_column(String(512), default="")
    created_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None] = mapped_column(default=None)
    acknowledged_by: Mapped[str] = mapped_column(String(64), default="")
    escalated_at: Mapped[datetime | None] = mapped_column(default=None)
    # The consistency check of the model's answer (issue 19; migration 0003):
    # consistent | inconsistent (unchecked: drafted before the check existed).
    consistency: Mapped[str] = mapped_column(String(16), default="unchecked",
                                             server_default="unchecked")
    consistency_reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    reasks: Mapped[int] = mapped_column(default=0, server_default="0")
    # none | send | held | sent-anyway (worker.checking.AlertDecision)
    alert_decision: Mapped[str] = mapped_column(String(16), default="none",
                                                server_default="none")
    # What the alert names (ehr.outbound.AlertBasis as JSON), for the escalation's rebuild.
    alert_basis: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # live | shadow: a shadow draft's outputs are stored (delivery state "shadow"), not sent
    mode: Mapped[str] = mapped_column(String(8), default="live")

    deliveries: Mapped[list[Delivery]] = relationship(back_populates="draft")


class Delivery(Base):
    """One outbox row: built bytes for one destination, re-sent as they are until delivered."""

    __tablename__ = "delivery"

    id: Mapped[int] = mapped_column(primary_key=True)
    draft_id: Mapped[int] = mapped_column(ForeignKey("draft.id"), index=True)
    destination: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # dicom | hl7 | folder
    payload_kind: Mapped[str] = mapped_column(String(16))  # sr | tid1500 | kos | oru | alert
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    # SOP Instance UID or HL7 control id: deterministic, so a re-send replaces itself.
    message_id: Mapped[str] = mapped_column(String(64))
    # pending | delivered | failed (permanent, for an admin) | expired | cancelled
    # | shadow (built in shadow mode, kept, never sent)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)

    draft: Mapped[Draft] = relationship(back_populates="deliveries")

    __table_args__ = (
        UniqueConstraint("draft_id", "destination", "payload_kind"),
        Index("ix_delivery_due", "state", "next_attempt_at"),
    )
