"""ORU^R01 with the draft report: result status R (stored, not verified), one OBX per item.

A re-draft goes out as R again with the same placer, filler and accession numbers; C
corrects a *final* result, which radraft never sends (DESIGN.md "Outputs").
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from radraft.core.settings import Hl7Destination, Settings
from radraft.core.types import JobKey
from radraft.ehr.outbound.er7 import lines
from radraft.ehr.outbound.message import (
    AI_NOTICE,
    REDRAFT_NOTICE,
    add_note,
    add_observation,
    finish,
    observation_stamp,
    start_result,
)
from radraft.ehr.outbound.report_view import ReportView
from radraft.ehr.outbound.types import ExamFacts, OrderInfo, PatientInfo

# OBX-3 report sections (LOINC).
PROCEDURE = ("55111-9", "Current imaging procedure descriptions", "LN")
HISTORY = ("18785-6", "Radiology Reason for study", "LN")
COMPARISON = ("18834-2", "Radiology Comparison study", "LN")
FINDINGS = ("59776-5", "Procedure Findings", "LN")
IMPRESSION = ("19005-8", "Radiology Imaging study [Impression] (narrative)", "LN")
RECOMMENDATION = ("18783-1", "Radiology Study recommendation (narrative)", "LN")

# OBX-8 abnormal flags (HL7 table 0078) per finding severity.
ABNORMAL_FLAGS = {"critical": "AA", "significant": "A"}


def numbered(report: ReportView) -> list[str]:
    """Impressions numbered 1..n in the model's rank order (its rank numbers are unchecked)."""
    items = [i for i in sorted(report.impression, key=lambda i: i.rank) if lines(i.text)]
    return [f"{n}. {item.text}" for n, item in enumerate(items, start=1)]


def report_rows(report: ReportView, order: OrderInfo, facts: ExamFacts | None = None,
                ) -> list[tuple[tuple[str, str, str], list[str], str]]:
    """(section code, lines, abnormal flag) per OBX, in report order; empty parts left out.

    The procedure (55111-9) is the order's (OBR-4 text, which the worker fills from the
    header when the order has none) and the series read, never the model's `exam`.
    """
    facts = facts or ExamFacts()
    rows: list[tuple[tuple[str, str, str], list[str], str]] = []
    procedure = lines(order.procedure_text) + [x for s in facts.series for x in lines(s)]
    if procedure:
        rows.append((PROCEDURE, procedure, ""))
    if lines(report.clinical_history):
        rows.append((HISTORY, lines(report.clinical_history), ""))
    comparison = [x for p in facts.priors for x in lines("Prior " + p)]
    comparison += lines(report.comparison)
    if comparison:
        rows.append((COMPARISON, comparison, ""))
    for index, finding in enumerate(report.findings):
        text = f"{finding.system}: {finding.text}"
        places = facts.finding_places[index] if index < len(facts.finding_places) else ()
        if places:
            text += f" ({'; '.join(places)})"
        rows.append((FINDINGS, lines(text), ABNORMAL_FLAGS.get(str(finding.severity), "")))
    if not report.findings:
        rows.append((FINDINGS, ["No findings reported by the model."], ""))
    if lines(report.limitations):
        rows.append((FINDINGS, lines("Limitations: " + report.limitations), ""))
    for text in numbered(report):
        rows.append((IMPRESSION, lines(text), ""))
    for text in report.recommendations:
        if lines(text):
            rows.append((RECOMMENDATION, lines(text), ""))
    return rows


def build_oru(
    report: ReportView, *, order: OrderInfo, patient: PatientInfo, settings: Settings,
    destination: Hl7Destination, job_key: JobKey, redraft: bool,
    now: datetime | None = None, facts: ExamFacts | None = None, notes: Sequence[str] = (),
) -> bytes:
    """The draft as ORU^R01 bytes (ER7, \\r separators, MSH-18 charset).

    `now` (the draft's time) goes to MSH-7 and OBR-22; OBR-7 and OBX-14 carry the exam's
    time (`order.observed_at`). `notes` follow the AI notice as NTEs (e.g. a failed
    consistency check)."""
    when = now or datetime.now(UTC)
    parts = start_result(kind="oru", order=order, patient=patient, settings=settings,
                         destination=destination, job_key=job_key, now=when)
    texts = [AI_NOTICE, *(n for n in notes if n.strip())]
    if redraft:
        texts.append(REDRAFT_NOTICE)
    for set_id, text in enumerate(texts, start=1):
        add_note(parts, set_id, text)
    observed = observation_stamp(order, settings.site.timezone)
    sub_ids: dict[str, int] = {}
    set_id = 0
    for code, texts, flag in report_rows(report, order, facts):
        for text in texts:
            set_id += 1
            sub_ids[code[0]] = sub_ids.get(code[0], 0) + 1
            add_observation(parts, set_id=set_id, code=code, sub_id=sub_ids[code[0]], text=text,
                            status=destination.result_status, abnormal_flag=flag, now=observed)
    return finish(parts, destination)
