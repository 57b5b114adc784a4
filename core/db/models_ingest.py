"""What the DICOM node received: studies, series, instances, announcements, rule decisions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from radraft.core.db.base import Base

UID = String(64)


class Study(Base):
    __tablename__ = "study"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_uid: Mapped[str] = mapped_column(UID, unique=True)
    patient_id: Mapped[str] = mapped_column(String(64), default="")
    issuer_of_patient_id: Mapped[str] = mapped_column(String(64), default="")
    accession: Mapped[str] = mapped_column(String(64), default="", index=True)
    study_date: Mapped[str] = mapped_column(String(8), default="")
    study_description: Mapped[str] = mapped_column(String(128), default="")
    modalities: Mapped[str] = mapped_column(String(64), default="")
    body_part: Mapped[str] = mapped_column(String(64), default="")
    institution: Mapped[str] = mapped_column(String(128), default="")
    patient_age_years: Mapped[int | None] = mapped_column(default=None)
    patient_sex: Mapped[str] = mapped_column(String(16), default="")
    calling_aet: Mapped[str] = mapped_column(String(16), default="")
    # "received": sent to the node; "prior": fetched from the PACS as a comparison.
    source: Mapped[str] = mapped_column(String(16), default="received")
    first_received_at: Mapped[datetime]
    last_received_at: Mapped[datetime]
    # Only IMAGE instances move this: the stability timer starts from here.
    last_image_at: Mapped[datetime | None] = mapped_column(default=None)
    instance_count: Mapped[int] = mapped_column(default=0)
    image_count: Mapped[int] = mapped_column(default=0)
    announced_version: Mapped[str | None] = mapped_column(String(64), default=None)
    announced_at: Mapped[datetime | None] = mapped_column(default=None)
    # image_count when the version was announced: a study is due again when image_count
    # moves past it (a counter incremented in SQL, exact under concurrent receivers).
    announced_image_count: Mapped[int | None] = mapped_column(default=None)
    # Set when something needs an admin (identity mismatch, no rule matched ...).
    admin_flag: Mapped[str] = mapped_column(String(256), default="")

    series: Mapped[list[Series]] = relationship(back_populates="study")

    __table_args__ = (Index("ix_study_pending", "announced_at", "last_image_at"),)


class Series(Base):
    __tablename__ = "series"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"), index=True)
    series_uid: Mapped[str] = mapped_column(UID, unique=True)
    modality: Mapped[str] = mapped_column(String(16), default="")
    series_number: Mapped[int | None] = mapped_column(default=None)
    description: Mapped[str] = mapped_column(String(128), default="")
    body_part: Mapped[str] = mapped_column(String(64), default="")
    # Filled by the worker's frame assembly: "arterial", "T2 FLAIR", "localizer" ...
    label: Mapped[str] = mapped_column(String(64), default="")

    study: Mapped[Study] = relationship(back_populates="series")
    instances: Mapped[list[Instance]] = relationship(back_populates="series")


class Instance(Base):
    __tablename__ = "instance"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"), index=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"), index=True)
    sop_uid: Mapped[str] = mapped_column(UID, unique=True)
    sop_class_uid: Mapped[str] = mapped_column(UID)
    transfer_syntax: Mapped[str] = mapped_column(UID, default="")
    path: Mapped[str] = mapped_column(String(512))
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    is_image: Mapped[bool] = mapped_column(default=True)
    instance_number: Mapped[int | None] = mapped_column(default=None)
    received_at: Mapped[datetime]
    receive_count: Mapped[int] = mapped_column(default=1)

    series: Mapped[Series] = relationship(back_populates="instances")


class StudyAnnouncement(Base):
    """One `StudyStable` the node announced (a study may be announced once per version)."""

    __tablename__ = "study_announcement"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_uid: Mapped[str] = mapped_column(UID, index=True)
    version: Mapped[str] = mapped_column(String(64))
    image_count: Mapped[int]
    instance_count: Mapped[int]
    announced_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("study_uid", "version"),)


class RuleDecision(Base):
    """What the routing rules said about one study version (also "no rule matched")."""

    __tablename__ = "rule_decision"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_uid: Mapped[str] = mapped_column(UID, index=True)
    version: Mapped[str] = mapped_column(String(64))
    rule_name: Mapped[str] = mapped_column(String(128), default="")
    action: Mapped[str] = mapped_column(String(16))  # draft | ignore | unmatched
    profile: Mapped[str] = mapped_column(String(64), default="")
    priority: Mapped[str] = mapped_column(String(16), default="")
    destinations: Mapped[list[str]] = mapped_column(JSON, default=list)
    reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    decided_at: Mapped[datetime]
