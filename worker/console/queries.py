"""Studies for the console: the list with its filters, and one study in full."""

from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydicom.errors import InvalidDicomError
from sqlalchemy import Select, exists, func, or_, select
from sqlalchemy.orm import Session

from radraft.core.db import (
    AuditEvent,
    Delivery,
    Draft,
    DraftImage,
    Instance,
    Job,
    Patient,
    RuleDecision,
    Series,
    Study,
    db_now,
)
from radraft.dicom_node.errors import StoreRefused
from radraft.dicom_node.header.reading import read_attributes
from radraft.reporting.render import render_html
from radraft.reporting.report_schema import DraftReport
from radraft.worker.console.segments import sequence_stub
from radraft.worker.console.views import (
    AuditRow,
    DecisionRow,
    DeliveryRow,
    DraftView,
    JobRow,
    SeriesRow,
    StudyDetail,
    StudyRow,
)

log = logging.getLogger(__name__)

JOB_STATES = ("queued", "running", "done", "failed", "cancelled", "superseded", "none")
RULE_ACTIONS = ("draft", "ignore", "unmatched", "none")
PAGE = 200


@dataclass(frozen=True)
class StudyFilter:
    """The studies page's filters (all optional). `q` matches UID, accession, patient id or
    description, never the patient name: a name in a URL ends up in proxy logs."""

    q: str = ""
    job_state: str = ""
    rule: str = ""
    modality: str = ""
    hours: float | None = None
    flagged: bool = False


def _latest_job_state() -> Any:
    return (select(Job.state).where(Job.study_uid == Study.study_uid)
            .order_by(Job.id.desc()).limit(1).scalar_subquery())


def _filtered(flt: StudyFilter, now: datetime) -> Select[Any]:
    query = select(Study)
    if flt.q.strip():
        like = f"%{flt.q.strip()}%"
        query = query.where(or_(Study.study_uid.like(like), Study.accession.like(like),
                                Study.patient_id.like(like),
                                Study.study_description.ilike(like)))
    if flt.modality:
        query = query.where(Study.modalities.like(f"%{flt.modality.upper()}%"))
    if flt.hours:
        query = query.where(Study.last_received_at >= now - timedelta(hours=flt.hours))
    if flt.flagged:
        query = query.where(Study.admin_flag != "")
    if flt.job_state == "none":
        query = query.where(~exists().where(Job.study_uid == Study.study_uid))
    elif flt.job_state in JOB_STATES:
        query = query.where(_latest_job_state() == flt.job_state)
    if flt.rule == "none":
        query = query.where(~exists().where(RuleDecision.study_uid == Study.study_uid))
    elif flt.rule in RULE_ACTIONS:
        query = query.where(exists().where(RuleDecision.study_uid == Study.study_uid,
                                           RuleDecision.action == flt.rule))
    return query.order_by(Study.last_received_at.desc(), Study.id.desc()).limit(PAGE)


def patient_names(session: Session, studies: Sequence[Study]) -> dict[str, tuple[str, str]]:
    """(name, birth date) per study UID from the EHR store (PHI: for pages, never logs)."""
    ids = {s.patient_id for s in studies if s.patient_id}
    if not ids:
        return {}
    by_id: dict[tuple[str, str], Patient] = {}
    for patient in session.scalars(select(Patient).where(Patient.patient_id.in_(ids))):
        by_id[(patient.patient_id, patient.issuer)] = patient
        by_id.setdefault((patient.patient_id, "*"), patient)
    found = {}
    for s in studies:
        match = by_id.get((s.patient_id, s.issuer_of_patient_id)) or by_id.get(
            (s.patient_id, "*"))
        if match is not None:
            found[s.study_uid] = (match.name.replace("^", " ").strip(), match.birth_date)
    return found


def _rule_text(decisions: list[RuleDecision]) -> str:
    texts = []
    for d in decisions:
        texts.append("unmatched" if d.action == "unmatched" else f"{d.action} by {d.rule_name}")
    return ", ".join(dict.fromkeys(texts))


def study_rows(session: Session, flt: StudyFilter) -> list[StudyRow]:
    return rows_for(session, list(session.scalars(_filtered(flt, db_now(session)))))


def rows_for(session: Session, studies: list[Study]) -> list[StudyRow]:
    uids = [s.study_uid for s in studies]
    jobs: dict[str, Job] = {}
    decisions: dict[str, list[RuleDecision]] = {}
    triage: dict[str, str] = {}
    modes: dict[str, str] = {}
    if uids:
        for job in session.scalars(select(Job).where(Job.study_uid.in_(uids))
                                   .order_by(Job.id)):
            jobs[job.study_uid] = job  # the newest wins
        for d in session.scalars(select(RuleDecision).where(RuleDecision.study_uid.in_(uids))
                                 .order_by(RuleDecision.id)):
            decisions.setdefault(d.study_uid, [])
            if decisions[d.study_uid] and decisions[d.study_uid][-1].version != d.version:
                decisions[d.study_uid] = []  # only the newest version's decisions
            decisions[d.study_uid].append(d)
        for uid, level, mode in session.execute(
                select(Draft.study_uid, Draft.triage_level, Draft.mode)
                .where(Draft.study_uid.in_(uids)).order_by(Draft.id)):
            triage[uid] = level
            modes[uid] = mode  # the newest draft's (a profile may shadow a live rule)
    names = patient_names(session, studies)
    rows = [_row(s, jobs.get(s.study_uid), decisions.get(s.study_uid, []),
                 triage.get(s.study_uid, ""), names.get(s.study_uid, ("", ""))[0])
            for s in studies]
    for row in rows:
        row.mode = modes.get(row.study_uid, row.mode)
    return rows


def _row(study: Study, job: Job | None, decisions: list[RuleDecision], triage: str,
         name: str) -> StudyRow:
    return StudyRow(
        study_uid=study.study_uid, accession=study.accession, patient_id=study.patient_id,
        patient_name=name, modalities=study.modalities, description=study.study_description,
        study_date=study.study_date, source=study.source, image_count=study.image_count,
        first_received_at=study.first_received_at, last_received_at=study.last_received_at,
        stable_at=study.announced_at, rule=_rule_text(decisions),
        job_state=job.state if job else "", priority=job.priority if job else "",
        drafted_at=job.finished_at if job and job.state == "done" else None,
        triage=triage, admin_flag=study.admin_flag, timings=job.timings if job else {},
        mode=job.mode if job else "live",
    )


def _header_name(session: Session, study: Study) -> tuple[str, str]:
    """Name and birth date from one stored header when the EHR store knows no patient."""
    path = session.scalar(select(Instance.path).where(Instance.study_id == study.id)
                          .order_by(Instance.id).limit(1))
    if not path:
        return "", ""
    try:
        # Bounded for deflated files (the node's reader, not pydicom's whole inflate).
        ds = read_attributes(Path(path), ["PatientName", "PatientBirthDate"])
    except (InvalidDicomError, OSError, ValueError, zlib.error, StoreRefused):
        log.info("study %s: no readable header for the patient name", study.study_uid)
        return "", ""
    return str(ds.get("PatientName", "")).replace("^", " ").strip(), \
        str(ds.get("PatientBirthDate", ""))


def delivery_row(row: Delivery, study_uid: str, accession: str = "") -> DeliveryRow:
    return DeliveryRow(
        id=row.id, draft_id=row.draft_id, study_uid=study_uid, accession=accession,
        destination=row.destination, kind=row.kind, payload_kind=row.payload_kind,
        message_id=row.message_id, state=row.state, attempts=row.attempts,
        next_attempt_at=row.next_attempt_at, expires_at=row.expires_at,
        last_error=row.last_error, created_at=row.created_at, delivered_at=row.delivered_at,
    )


def draft_view(session: Session, draft: Draft) -> DraftView:
    images = session.execute(select(DraftImage.kind, DraftImage.frame_index)
                             .where(DraftImage.draft_id == draft.id)).all()
    frames = {index: f"/drafts/{draft.id}/frames/{index}.png"
              for kind, index in images if kind == "frame"}
    has_sheet = any(kind == "sheet" for kind, _ in images) or session.scalar(
        select(func.count(Delivery.id)).where(Delivery.draft_id == draft.id,
                                              Delivery.payload_kind == "sheet")) != 0
    report = DraftReport.model_validate(draft.report)
    seq = sequence_stub(draft.segments)
    html = render_html(report, seq, lambda i: frames.get(i, f"#frame-{i}"))
    rows = session.scalars(select(Delivery).where(Delivery.draft_id == draft.id)
                           .order_by(Delivery.destination, Delivery.payload_kind))
    return DraftView(
        id=draft.id, job_id=draft.job_id, version=draft.version, profile=draft.profile,
        triage=draft.triage_level, model_name=draft.model_name, frame_count=draft.frame_count,
        created_at=draft.created_at, acknowledged_at=draft.acknowledged_at,
        acknowledged_by=draft.acknowledged_by, escalated_at=draft.escalated_at,
        mode=draft.mode, html=html,
        text=draft.rendered_text, report=draft.report,
        sheet_url=f"/drafts/{draft.id}/sheet.png" if has_sheet else None, key_frames=frames,
        deliveries=[delivery_row(r, draft.study_uid) for r in rows],
        consistency=draft.consistency, consistency_reasons=draft.consistency_reasons,
        reasks=draft.reasks, alert_decision=draft.alert_decision,
    )


def _series(session: Session, study: Study, drafts: list[Draft]) -> list[SeriesRow]:
    labels: dict[str, list[str]] = {}
    for draft in drafts[:1]:  # the newest draft's frame assembly
        for seg in draft.segments:
            text = " ".join(p for p in (seg.get("label", ""), f"({seg.get('mapping', '')})"
                                        if seg.get("mapping") else "") if p)
            labels.setdefault(str(seg.get("series_uid", "")), [])
            if text and text not in labels[str(seg.get("series_uid", ""))]:
                labels[str(seg.get("series_uid", ""))].append(text)
    counts = {series_id: n for series_id, n in session.execute(
        select(Instance.series_id, func.count(Instance.id))
        .where(Instance.study_id == study.id).group_by(Instance.series_id))}
    rows = session.scalars(select(Series).where(Series.study_id == study.id)
                           .order_by(Series.series_number, Series.id))
    return [SeriesRow(series_uid=s.series_uid, series_number=s.series_number,
                      modality=s.modality, description=s.description, body_part=s.body_part,
                      instances=counts.get(s.id, 0),
                      labels=labels.get(s.series_uid) or ([s.label] if s.label else []))
            for s in rows]


def study_detail(session: Session, study_uid: str) -> StudyDetail | None:
    study = session.scalars(select(Study).where(Study.study_uid == study_uid)).first()
    if study is None:
        return None
    [row] = rows_for(session, [study])
    name, birth = patient_names(session, [study]).get(study_uid, ("", ""))
    if not name:
        name, birth = _header_name(session, study)
    row.patient_name = name
    drafts = list(session.scalars(select(Draft).where(Draft.study_uid == study_uid)
                                  .order_by(Draft.id.desc())))
    decisions = session.scalars(select(RuleDecision).where(RuleDecision.study_uid == study_uid)
                                .order_by(RuleDecision.id))
    jobs = session.scalars(select(Job).where(Job.study_uid == study_uid).order_by(Job.id))
    audit = session.scalars(select(AuditEvent).where(AuditEvent.study_uid == study_uid)
                            .order_by(AuditEvent.at, AuditEvent.id))
    return StudyDetail(
        study=row, patient_birth_date=birth, series=_series(session, study, drafts),
        decisions=[decision_row(d) for d in decisions],
        jobs=[JobRow.model_validate(j, from_attributes=True) for j in jobs],
        drafts=[draft_view(session, d) for d in drafts],
        audit=[AuditRow(at=a.at, kind=a.kind, actor=a.actor, job_id=a.job_id,
                        details=a.details) for a in audit],
    )


def decision_row(d: RuleDecision) -> DecisionRow:
    return DecisionRow(version=d.version, rule_name=d.rule_name, action=d.action,
                       profile=d.profile, priority=d.priority, destinations=d.destinations,
                       reasons=d.reasons, decided_at=d.decided_at)
