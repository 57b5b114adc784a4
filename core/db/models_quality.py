"""Quality: each draft paired with the final report of its accession, and the pair's
scores (issue 21). Labels are stored, report text never is (it stays in prior_report)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from radraft.core.db.base import Base


class QualityPair(Base):
    """One (accession, draft) with the final report it was scored against."""

    __tablename__ = "quality_pair"

    id: Mapped[int] = mapped_column(primary_key=True)
    accession: Mapped[str] = mapped_column(String(64), index=True)
    draft_id: Mapped[int] = mapped_column(ForeignKey("draft.id"), index=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("prior_report.id"))
    study_uid: Mapped[str] = mapped_column(String(64), default="")
    profile: Mapped[str] = mapped_column(String(64), default="")
    modality: Mapped[str] = mapped_column(String(16), default="")
    rule_name: Mapped[str] = mapped_column(String(128), default="")
    mode: Mapped[str] = mapped_column(String(8), default="live")
    draft_triage: Mapped[str] = mapped_column(String(16), default="routine")
    final_critical: Mapped[bool] = mapped_column(default=False)
    triage: Mapped[str] = mapped_column(String(2), default="")  # TP | FP | FN | TN
    draft_labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    final_labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    study_complete_at: Mapped[datetime | None] = mapped_column(default=None)
    draft_ready_at: Mapped[datetime | None] = mapped_column(default=None)
    alert_at: Mapped[datetime | None] = mapped_column(default=None)
    final_signed_at: Mapped[datetime | None] = mapped_column(default=None)
    scored_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("accession", "draft_id"),)


class QualityScore(Base):
    """One named score of one pair (an interval only where one pair has one: aggregates
    and their intervals are computed when read, over the pairs chosen)."""

    __tablename__ = "quality_score"

    id: Mapped[int] = mapped_column(primary_key=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("quality_pair.id", ondelete="CASCADE"),
                                         index=True)
    accession: Mapped[str] = mapped_column(String(64))
    draft_id: Mapped[int] = mapped_column()
    name: Mapped[str] = mapped_column(String(64))  # "bleu4.findings", "agreement.f1", ...
    value: Mapped[float] = mapped_column(Float)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ci_low: Mapped[float | None] = mapped_column(Float, default=None)
    ci_high: Mapped[float | None] = mapped_column(Float, default=None)

    __table_args__ = (UniqueConstraint("accession", "draft_id", "name"),)
