"""The triage alert for emergency-department destinations (urgent and critical drafts).

An ORU^R01 (the destination's `alert_message_type`) whose TQ1-9 carries the priority
(S for critical, A for urgent), whose first OBX lists the critical findings with abnormal
flag AA (critical) or A (urgent), followed by the triage reasons and the impression.
"""

from __future__ import annotations

from datetime import UTC, datetime

from radraft.core.errors import OutputBuildError
from radraft.core.settings import Hl7Destination, Settings
from radraft.core.types import JobKey, TriageLevel
from radraft.ehr.outbound.er7 import hl7_timestamp, lines
from radraft.ehr.outbound.message import AI_NOTICE, add_note, add_observation, finish, start_result
from radraft.ehr.outbound.report_view import ReportView
from radraft.ehr.outbound.types import OrderInfo, PatientInfo

CRITICAL_FINDINGS = ("RADRAFT-CRIT", "Critical findings (AI triage)", "L")
TRIAGE_REASONS = ("RADRAFT-TRIAGE", "Triage reasons (AI triage)", "L")
IMPRESSION = ("19005-8", "Radiology Imaging study [Impression] (narrative)", "LN")
FLAGS = {TriageLevel.CRITICAL: "AA", TriageLevel.URGENT: "A"}
PRIORITIES = {TriageLevel.CRITICAL: "S", TriageLevel.URGENT: "A"}


def build_ed_alert(
    report: ReportView, *, order: OrderInfo, patient: PatientInfo, settings: Settings,
    destination: Hl7Destination, job_key: JobKey, now: datetime | None = None,
    escalation_minutes: float | None = None,
) -> bytes:
    """Alert bytes for an urgent or critical draft; a routine draft raises OutputBuildError.

    `escalation_minutes`: the second alert for a draft nobody acknowledged in that time
    (its own control id, so the receiver does not drop it as a duplicate of the first)."""
    level = report.triage.level
    if not level.alerts_ed:
        raise OutputBuildError(f"a {level.value} draft raises no ED alert")
    when = now or datetime.now(UTC)
    kind = "alert" if escalation_minutes is None else "escalation"
    parts = start_result(kind=kind, order=order, patient=patient, settings=settings,
                         destination=destination, job_key=job_key, now=when,
                         message_type=destination.alert_message_type)
    note = f"{level.value.upper()} triage by AI. {AI_NOTICE}"
    if escalation_minutes is not None:
        note = (f"ESCALATION: not acknowledged within {escalation_minutes:g} minutes. "
                + note)
    add_note(parts, 1, note)
    timing = parts.order_group.add_group("ORU_R01_TIMING_QTY")
    timing.tq1.tq1_1 = "1"
    timing.tq1.tq1_9 = PRIORITIES[level]
    stamp = hl7_timestamp(when, settings.site.timezone)
    critical = [line for text in report.triage.critical_findings for line in lines(text)]
    critical = critical or [
        line for f in report.findings if str(f.severity) == "critical"
        for line in lines(f"{f.system}: {f.text}")
    ] or [f"{level.value} triage, no single finding named"]
    rows = [(CRITICAL_FINDINGS, critical, FLAGS[level])]
    reasons = [line for text in report.triage.reasons for line in lines(text)]
    if reasons:
        rows.append((TRIAGE_REASONS, reasons, ""))
    impression = [line for item in sorted(report.impression, key=lambda i: i.rank)
                  for line in lines(f"{item.rank}. {item.text}")]
    if impression:
        rows.append((IMPRESSION, impression, ""))
    set_id = 0
    for code, texts, flag in rows:
        for sub_id, text in enumerate(texts, start=1):
            set_id += 1
            add_observation(parts, set_id=set_id, code=code, sub_id=sub_id, text=text,
                            status=destination.result_status, abnormal_flag=flag, now=stamp)
    return finish(parts, destination)
