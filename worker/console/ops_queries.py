"""Operations views: queue depths and workers, the deliveries that need an eye, the ED
board of urgent and critical drafts."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from radraft.core.db import (
    Delivery,
    Draft,
    DraftImage,
    Job,
    Study,
    WorkerHeartbeat,
    db_now,
)
from radraft.core.settings import Settings
from radraft.core.types import Priority
from radraft.worker.checking import UNSUPPORTED_BOARD_TEXT
from radraft.worker.console.queries import delivery_row, patient_names
from radraft.worker.console.views import (
    DeliveryRow,
    DestinationDepth,
    EdRow,
    OldestJob,
    PriorityDepth,
    QueuesView,
    WorkerRow,
)
from radraft.worker.heartbeat import ALIVE_WITHIN_S

DELIVERY_FILTERS = ("attention", "retrying", "failed", "expired", "pending", "delivered",
                    "cancelled", "shadow", "all")
ALERTING = ("urgent", "critical")
# The board keeps acknowledged alerts this long, unacknowledged ones until acknowledged.
ED_KEEP = timedelta(hours=24)
WORKERS_SHOWN = timedelta(days=1)


def queues_view(session: Session) -> QueuesView:
    now = db_now(session)
    priorities = []
    for priority in Priority:
        queued, oldest = session.execute(select(func.count(Job.id), func.min(Job.created_at))
                                         .where(Job.state == "queued",
                                                Job.priority == priority.value)).one()
        running = session.scalar(select(func.count(Job.id)).where(
            Job.state == "running", Job.priority == priority.value)) or 0
        priorities.append(PriorityDepth(
            priority=priority.value, queued=queued, running=running, oldest_queued_at=oldest,
            oldest_waiting_s=(now - oldest).total_seconds() if oldest else None))
    oldest_job = session.scalars(select(Job).where(Job.state == "queued")
                                 .order_by(Job.created_at, Job.id).limit(1)).first()
    return QueuesView(
        now=now, priorities=priorities, destinations=_destinations(session),
        workers=workers(session, now),
        oldest_job=OldestJob(
            id=oldest_job.id, study_uid=oldest_job.study_uid, priority=oldest_job.priority,
            profile=oldest_job.profile, created_at=oldest_job.created_at,
            waiting_s=(now - oldest_job.created_at).total_seconds(),
        ) if oldest_job else None,
        failed_jobs=session.scalar(select(func.count(Job.id)).where(Job.state == "failed"))
        or 0,
    )


def _destinations(session: Session) -> list[DestinationDepth]:
    tried = func.sum(case((Delivery.attempts > 0, 1), else_=0))
    rows = session.execute(
        select(Delivery.destination, Delivery.state, func.count(Delivery.id), tried,
               func.min(Delivery.created_at))
        .where(Delivery.state.in_(("pending", "failed", "expired")))
        .group_by(Delivery.destination, Delivery.state)).all()
    found: dict[str, DestinationDepth] = {}
    for name, state, count, retrying, oldest in rows:
        depth = found.setdefault(name, DestinationDepth(
            destination=name, pending=0, retrying=0, failed=0, expired=0,
            oldest_pending_at=None))
        if state == "pending":
            depth.pending, depth.retrying, depth.oldest_pending_at = count, retrying or 0, oldest
        elif state == "failed":
            depth.failed = count
        else:
            depth.expired = count
    return sorted(found.values(), key=lambda d: d.destination)


def workers(session: Session, now: datetime) -> list[WorkerRow]:
    beats = session.scalars(select(WorkerHeartbeat).where(
        WorkerHeartbeat.seen_at >= now - WORKERS_SHOWN).order_by(WorkerHeartbeat.name))
    return [WorkerRow(name=b.name, queues=b.queues, started_at=b.started_at, seen_at=b.seen_at,
                      alive=(now - b.seen_at).total_seconds() <= ALIVE_WITHIN_S)
            for b in beats]


def delivery_rows(session: Session, which: str = "attention", limit: int = 300,
                  ) -> list[DeliveryRow]:
    """`attention`: retrying, failed and expired rows (what an admin acts on)."""
    retrying = and_(Delivery.state == "pending", Delivery.attempts > 0)
    conditions = {
        "attention": or_(retrying, Delivery.state.in_(("failed", "expired"))),
        "retrying": retrying,
        "all": None,
    }
    condition = conditions.get(which, Delivery.state == which)
    query = (select(Delivery, Draft.study_uid, Study.accession)
             .join(Draft, Draft.id == Delivery.draft_id)
             .outerjoin(Study, Study.study_uid == Draft.study_uid))
    if condition is not None:
        query = query.where(condition)
    query = query.order_by(Delivery.created_at.desc(), Delivery.id.desc()).limit(limit)
    return [delivery_row(row, uid, accession or "")
            for row, uid, accession in session.execute(query)]


def _not_superseded() -> object:
    newer = aliased(Draft)
    return ~exists().where(newer.study_uid == Draft.study_uid,
                           newer.profile == Draft.profile, newer.id > Draft.id)


def _first_key_frames(session: Session, draft_ids: list[int]) -> dict[int, int]:
    """Draft id -> the lowest cited frame index with a stored picture."""
    if not draft_ids:
        return {}
    rows = session.execute(
        select(DraftImage.draft_id, func.min(DraftImage.frame_index))
        .where(DraftImage.draft_id.in_(draft_ids), DraftImage.kind == "frame")
        .group_by(DraftImage.draft_id))
    return {int(draft_id): int(index) for draft_id, index in rows}


def _checked(draft: Draft) -> dict[str, Any]:
    """The consistency columns for the board: a held alert shows no finding at all (the
    model's named findings are what the check could not support)."""
    basis = draft.alert_basis or {}
    named = [f"{f.get('text', '')}" + (f" ({f['where']})" if f.get("where") else "")
             for f in basis.get("findings", [])]
    fields: dict[str, Any] = {
        "consistency": draft.consistency, "consistency_reasons": draft.consistency_reasons,
        "alert_decision": draft.alert_decision, "alert_findings": named,
    }
    if draft.alert_decision == "held":
        fields.update(board_text=UNSUPPORTED_BOARD_TEXT, critical_findings=[], reasons=[])
    elif draft.alert_decision == "sent-anyway":
        fields["board_text"] = f"{UNSUPPORTED_BOARD_TEXT} (alert sent anyway)"
    return fields


def ed_rows(session: Session, settings: Settings) -> list[EdRow]:
    """Urgent/critical drafts not replaced by a newer draft: unacknowledged ones always,
    acknowledged ones for ED_KEEP. Unacknowledged first, critical first, oldest first."""
    now = db_now(session)
    query = (select(Draft, Study).join(Study, Study.study_uid == Draft.study_uid)
             .where(Draft.triage_level.in_(ALERTING), _not_superseded(),  # type: ignore[arg-type]
                    Draft.mode != "shadow",  # shadow drafts never reach the ED
                    or_(Draft.acknowledged_at.is_(None),
                        Draft.acknowledged_at >= now - ED_KEEP)))
    pairs = list(session.execute(query))
    names = patient_names(session, [study for _, study in pairs])
    alerts: dict[int, list[str]] = {}
    if pairs:
        for draft_id, dest, kind, state in session.execute(
                select(Delivery.draft_id, Delivery.destination, Delivery.payload_kind,
                       Delivery.state).where(Delivery.draft_id.in_([d.id for d, _ in pairs]),
                                             Delivery.payload_kind.in_(("alert", "escalation")))
                .order_by(Delivery.id)):
            alerts.setdefault(draft_id, []).append(f"{dest} {kind}: {state}")
    key_frames = _first_key_frames(session, [d.id for d, _ in pairs])
    limit = timedelta(minutes=settings.web.escalate_after_minutes)
    rows = []
    for draft, study in pairs:
        triage = draft.report.get("triage", {})
        fields: dict[str, Any] = dict(
            draft_id=draft.id, study_uid=study.study_uid, accession=study.accession,
            patient_id=study.patient_id, patient_name=names.get(study.study_uid, ("", ""))[0],
            description=study.study_description, triage=draft.triage_level,
            critical_findings=list(triage.get("critical_findings", [])),
            reasons=list(triage.get("reasons", [])), study_arrived_at=study.first_received_at,
            minutes_since_arrival=round((now - study.first_received_at).total_seconds() / 60, 1),
            drafted_at=draft.created_at, acknowledged_at=draft.acknowledged_at,
            acknowledged_by=draft.acknowledged_by, escalated_at=draft.escalated_at,
            overdue=draft.acknowledged_at is None and now - draft.created_at >= limit,
            alert_states=alerts.get(draft.id, []),
            # A held alert names no finding, so it links no key image either.
            key_image_url=(f"/drafts/{draft.id}/frames/{key_frames[draft.id]}.png"
                           if draft.id in key_frames and draft.alert_decision != "held"
                           else None),
        )
        rows.append(EdRow(**{**fields, **_checked(draft)}))
    rows.sort(key=lambda r: (r.acknowledged_at is not None, r.triage != "critical",
                             r.study_arrived_at))
    return rows
