"""ORU^R01 with the draft report: result status R (stored, not verified), one OBX per item.

A re-draft goes out as R again with the same placer, filler and accession numbers; C
corrects a *final* result, which radraft never sends (DESIGN.md "Outputs").
"""

from __future__ import annotations

from datetime import UTC, datetime

from radraft.core.settings import Hl7Destination, Settings
from radraft.core.types import JobKey
from radraft.ehr.outbound.er7 import hl7_timestamp, lines
from radraft.ehr.outbound.message import (
    AI_NOTICE,
    REDRAFT_NOTICE,
    add_note,
    add_observation,
    finish,
    start_result,
)
from radraft.ehr.outbound.report_view import ReportView
from radraft.ehr.outbound.types import OrderInfo, PatientInfo

# OBX-3 report sections (LOINC).
PROCEDURE = ("55111-9", "Current imaging procedure descriptions", "LN")
HISTORY = ("18785-6", "Radiology Reason for study", "LN")
COMPARISON = ("18834-2", "Radiology Comparison study", "LN")
FINDINGS = ("59776-5", "Procedure Findings", "LN")
IMPRESSION = ("19005-8", "Radiology Imaging study [Impression] (narrative)", "LN")
RECOMMENDATION = ("18783-1", "Radiology Study recommendation (narrative)", "LN")

# OBX-8 abnormal flags (HL7 table 0078) per finding severity.
ABNORMAL_FLAGS = {"critical": "AA", "significant": "A"}


def report_rows(report: ReportView) -> list[tuple[tuple[str, str, str], list[str], str]]:
    """(section code, lines, abnormal flag) per OBX, in report order; empty parts left out."""
    rows: list[tuple[tuple[str, str, str], list[str], str]] = []
    for code, text in ((PROCEDURE, report.exam), (PROCEDURE, report.technique),
                       (HISTORY, report.clinical_history), (COMPARISON, report.comparison)):
        if lines(text):
            rows.append((code, lines(text), ""))
    for finding in report.findings:
        text = f"{finding.system}: {finding.text}"
        rows.append((FINDINGS, lines(text), ABNORMAL_FLAGS.get(str(finding.severity), "")))
    if not report.findings:
        rows.append((FINDINGS, ["No findings reported by the model."], ""))
    if lines(report.limitations):
        rows.append((FINDINGS, lines("Limitations: " + report.limitations), ""))
    for item in sorted(report.impression, key=lambda i: i.rank):
        if lines(item.text):
            rows.append((IMPRESSION, lines(f"{item.rank}. {item.text}"), ""))
    for text in report.recommendations:
        if lines(text):
            rows.append((RECOMMENDATION, lines(text), ""))
    return rows


def build_oru(
    report: ReportView, *, order: OrderInfo, patient: PatientInfo, settings: Settings,
    destination: Hl7Destination, job_key: JobKey, redraft: bool,
    now: datetime | None = None,
) -> bytes:
    """The draft as ORU^R01 bytes (ER7, \\r separators, MSH-18 charset)."""
    when = now or datetime.now(UTC)
    parts = start_result(kind="oru", order=order, patient=patient, settings=settings,
                         destination=destination, job_key=job_key, now=when)
    add_note(parts, 1, AI_NOTICE)
    if redraft:
        add_note(parts, 2, REDRAFT_NOTICE)
    stamp = hl7_timestamp(when, settings.site.timezone)
    sub_ids: dict[str, int] = {}
    set_id = 0
    for code, texts, flag in report_rows(report):
        for text in texts:
            set_id += 1
            sub_ids[code[0]] = sub_ids.get(code[0], 0) + 1
            add_observation(parts, set_id=set_id, code=code, sub_id=sub_ids[code[0]], text=text,
                            status=destination.result_status, abnormal_flag=flag, now=stamp)
    return finish(parts, destination)
