"""What the web console and the worker heartbeats keep: login sessions, draft pictures,
worker liveness."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from radraft.core.db.base import Base

if TYPE_CHECKING:
    from radraft.core.db.models_jobs import Draft


class WebSession(Base):
    """A console login. Server-side, so logging out or removing a user ends it at once;
    the cookie carries a random token whose SHA-256 is stored here (a leaked database
    dump holds no usable session)."""

    __tablename__ = "web_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class DraftImage(Base):
    """Pictures of a draft for people, stored with the Draft row at draft time: the contact
    sheet (`kind` "sheet", frame_index -1) and each cited key frame (`kind` "frame"). Kept
    in the database so the console shows them after the study's files are purged and on a
    host that does not mount the DICOM store."""

    __tablename__ = "draft_image"

    id: Mapped[int] = mapped_column(primary_key=True)
    draft_id: Mapped[int] = mapped_column(ForeignKey("draft.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    frame_index: Mapped[int] = mapped_column(default=-1)
    png: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]

    draft: Mapped[Draft] = relationship()

    __table_args__ = (UniqueConstraint("draft_id", "kind", "frame_index"),)


class WorkerHeartbeat(Base):
    """One `radraft worker` process, seen alive at `seen_at` (the database clock)."""

    __tablename__ = "worker_heartbeat"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)  # host:pid
    queues: Mapped[str] = mapped_column(String(64), default="")
    started_at: Mapped[datetime]
    seen_at: Mapped[datetime]
