"""What the console shows, as pydantic models: the JSON API returns them, the pages
render them (one query layer for both)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class StudyRow(BaseModel):
    study_uid: str
    accession: str
    patient_id: str
    patient_name: str = Field("", description="PHI: shown behind login only")
    modalities: str
    description: str
    study_date: str
    source: str
    image_count: int
    first_received_at: datetime
    last_received_at: datetime
    stable_at: datetime | None
    rule: str = Field(description="'draft by <rule>', 'ignore by <rule>', 'unmatched' or ''")
    job_state: str
    priority: str
    drafted_at: datetime | None
    triage: str
    admin_flag: str
    timings: dict[str, Any] = Field(default_factory=dict)
    mode: str = Field("live", description="the newest job's rule mode: live or shadow")


class SeriesRow(BaseModel):
    series_uid: str
    series_number: int | None
    modality: str
    description: str
    body_part: str
    instances: int
    labels: list[str] = Field(description="phase / sequence labels from frame assembly")


class DecisionRow(BaseModel):
    version: str
    rule_name: str
    action: str
    profile: str
    priority: str
    destinations: list[str]
    reasons: list[Any]
    decided_at: datetime


class JobRow(BaseModel):
    id: int
    version: str
    profile: str
    priority: str
    rule_name: str
    state: str
    attempts: int
    max_attempts: int
    last_error: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    timings: dict[str, Any]


class DeliveryRow(BaseModel):
    id: int
    draft_id: int
    study_uid: str
    accession: str = ""
    destination: str
    kind: str
    payload_kind: str
    message_id: str
    state: str
    attempts: int
    next_attempt_at: datetime | None
    expires_at: datetime | None
    last_error: str
    created_at: datetime
    delivered_at: datetime | None


class DraftView(BaseModel):
    id: int
    job_id: int
    version: str
    profile: str
    triage: str
    model_name: str
    frame_count: int
    created_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str
    escalated_at: datetime | None
    mode: str = Field("live", description="live, or shadow: stored, delivered only to "
                      "shadow destinations")
    html: str = Field(description="the draft as an HTML fragment, cited frames linked")
    text: str
    report: dict[str, Any]
    sheet_url: str | None
    key_frames: dict[int, str] = Field(description="cited frame index -> image URL")
    deliveries: list[DeliveryRow]
    consistency: str = Field("unchecked", description="consistent | inconsistent | unchecked")
    consistency_reasons: list[str] = Field(default_factory=list)
    reasks: int = Field(0, description="times the model was asked again with the reasons")
    alert_decision: str = Field("none", description="none | send | held | sent-anyway")


class AuditRow(BaseModel):
    at: datetime
    kind: str
    actor: str
    job_id: int | None
    details: dict[str, Any]


class StudyDetail(BaseModel):
    study: StudyRow
    patient_birth_date: str = Field("", description="PHI: shown behind login only")
    series: list[SeriesRow]
    decisions: list[DecisionRow]
    jobs: list[JobRow]
    drafts: list[DraftView]
    audit: list[AuditRow]


class PriorityDepth(BaseModel):
    priority: str
    queued: int
    running: int
    oldest_queued_at: datetime | None
    oldest_waiting_s: float | None


class DestinationDepth(BaseModel):
    destination: str
    pending: int
    retrying: int
    failed: int
    expired: int
    oldest_pending_at: datetime | None


class WorkerRow(BaseModel):
    name: str
    queues: str
    started_at: datetime
    seen_at: datetime
    alive: bool


class OldestJob(BaseModel):
    id: int
    study_uid: str
    priority: str
    profile: str
    created_at: datetime
    waiting_s: float


class QueuesView(BaseModel):
    now: datetime
    priorities: list[PriorityDepth]
    destinations: list[DestinationDepth]
    workers: list[WorkerRow]
    oldest_job: OldestJob | None
    failed_jobs: int


class EdRow(BaseModel):
    draft_id: int
    study_uid: str
    accession: str
    patient_id: str
    patient_name: str = Field("", description="PHI: shown behind login only")
    description: str
    triage: str
    critical_findings: list[str]
    reasons: list[str]
    study_arrived_at: datetime
    minutes_since_arrival: float
    drafted_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str
    escalated_at: datetime | None
    overdue: bool = Field(description="unacknowledged past web.escalate_after_minutes")
    alert_states: list[str] = Field(description="'<destination>: <state>' of each alert row")
    key_image_url: str | None = Field(None, description="the first cited key frame's picture")
    consistency: str = Field("unchecked", description="consistent | inconsistent | unchecked")
    consistency_reasons: list[str] = Field(default_factory=list)
    alert_decision: str = Field("none", description="none | send | held | sent-anyway")
    board_text: str = Field("", description="what the board shows instead of the model's "
                            "findings when the triage is unsupported")
    alert_findings: list[str] = Field(default_factory=list,
                                      description="the findings the alert names, and where")


class RuleTestResult(BaseModel):
    study_uid: str
    source: str = Field(description="which rules were tried: the file or the edited text")
    outcomes: list[DecisionRow]


class RulesView(BaseModel):
    path: str | None
    text: str
    valid: bool
    errors: str
    in_force_digest: str
    file_digest: str
    in_force_count: int
    watcher_error: str
    rules: list[dict[str, Any]]
