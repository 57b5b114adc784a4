"""Audit events: ids and decisions, never patient names."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from radraft.core.db import AuditEvent, db_now


def record(
    session: Session, kind: str, *, study_uid: str = "", job_id: int | None = None,
    actor: str = "", **details: Any,
) -> AuditEvent:
    """Add an audit event to `session` (committed with the caller's transaction)."""
    event = AuditEvent(
        at=db_now(session), kind=kind, study_uid=study_uid, job_id=job_id, actor=actor,
        details=details,
    )
    session.add(event)
    return event
