"""The triage alert for emergency-department destinations (urgent and critical drafts).

An ORU^R01 (the destination's `alert_message_type`) that an ED system cannot take for, or
file over, the preliminary result of the same order:
- its own order: ORC-2/3 and OBR-2/3 carry an alert number derived from the draft (the
  ORU carries the order's placer/filler numbers), OBR-4 the destination's `alert_service`
  (the ORU carries the ordered procedure), OBR-29 points at the parent order;
- TQ1-9 carries the priority (S for critical, A for urgent);
- the first OBX rows name the findings that justify the triage and where they are
  ("series 3, image 45"), with abnormal flag AA (critical) or A (urgent); then the key
  image links, the model's triage reasons and the impression;
- when the model's answer failed radraft's consistency check and the site's policy is
  `alerts.unsupported: send`, an NTE and an OBX say so and why.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from radraft.core.errors import OutputBuildError
from radraft.core.settings import Hl7Destination, Settings
from radraft.core.types import JobKey, TriageLevel
from radraft.core.uids import control_id
from radraft.ehr.outbound.er7 import components, escape, lines
from radraft.ehr.outbound.message import (
    AI_NOTICE,
    MessageParts,
    add_note,
    add_observation,
    finish,
    observation_stamp,
    put,
    start_result,
)
from radraft.ehr.outbound.report_view import ReportView
from radraft.ehr.outbound.types import OrderInfo, PatientInfo

CRITICAL_FINDINGS = ("RADRAFT-CRIT", "Critical findings (AI triage)", "L")
KEY_IMAGES = ("RADRAFT-KEYIMG", "Key images (AI triage)", "L")
CHECK = ("RADRAFT-CHECK", "Consistency check of the AI answer", "L")
TRIAGE_REASONS = ("RADRAFT-TRIAGE", "Triage reasons (AI triage)", "L")
IMPRESSION = ("19005-8", "Radiology Imaging study [Impression] (narrative)", "LN")
FLAGS = {TriageLevel.CRITICAL: "AA", TriageLevel.URGENT: "A"}
PRIORITIES = {TriageLevel.CRITICAL: "S", TriageLevel.URGENT: "A"}
ALERT_NOTICE = ("This is an AI triage alert, not the report: the preliminary result of the "
                "order is a separate message.")
NAMESPACE = "RADRAFT"


@dataclass(frozen=True, slots=True)
class AlertFinding:
    """One finding that justifies the alert, where it is and a link to its key image."""

    text: str  # "liver: laceration with active bleeding"
    severity: str
    where: str = ""  # "series 3, image 45" (Series/Instance Number, never a frame index)
    link: str = ""


@dataclass(frozen=True, slots=True)
class AlertBasis:
    """What the alert states beyond the model's triage level (built by the worker from
    radraft's consistency check and the frame → instance map)."""

    findings: tuple[AlertFinding, ...] = ()
    # Non-empty: the answer failed the check and the site sends anyway; these say why.
    unsupported: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"findings": [asdict(f) for f in self.findings],
                "unsupported": list(self.unsupported)}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> AlertBasis | None:
        if not data:
            return None
        return cls(findings=tuple(AlertFinding(**f) for f in data.get("findings", [])),
                   unsupported=tuple(data.get("unsupported", [])))


def basis_from_report(report: ReportView) -> AlertBasis:
    """Without the worker's basis: the report's findings of the triage's severity."""
    needed = {"critical"} if report.triage.level is TriageLevel.CRITICAL \
        else {"critical", "significant"}
    return AlertBasis(findings=tuple(
        AlertFinding(f"{f.system}: {f.text}", str(f.severity))
        for f in report.findings if str(f.severity) in needed))


def alert_order_number(job_key: JobKey) -> str:
    """The alert's own placer/filler number, never the order's: derived from the study and
    profile (not the version), so a re-draft's alert replaces the earlier alert."""
    study_uid, _version, profile = job_key
    return "AL" + control_id(study_uid, profile, "alert-order")[:14]


def _own_order(parts: MessageParts, order: OrderInfo, destination: Hl7Destination,
               job_key: JobKey) -> None:
    """ORC/OBR identifiers and service of the alert's own order; OBR-29 the parent."""
    number = components(alert_order_number(job_key), NAMESPACE)
    orc, obr = parts.order_group.orc, parts.order_group.obr
    for segment, fields in ((orc, ("orc_2", "orc_3")), (obr, ("obr_2", "obr_3"))):
        for name in fields:
            put(segment, name, number)
    code, _, rest = destination.alert_service.partition("^")
    text, _, system = rest.partition("^")
    put(obr, "obr_4", components(code or "RADRAFT-AIALERT", text or "AI triage alert",
                                 system or "L"))
    if order.placer_order_number or order.filler_order_number:
        # EIP: placer EI ^ filler EI, each EI's components as subcomponents.
        put(obr, "obr_29", "^".join((_sub(order.placer_order_number),
                                     _sub(order.filler_order_number))).rstrip("^"))


def _sub(ei: str) -> str:
    """An EI held as ER7 components ("PL-77^HIS") as the subcomponents of an EIP part."""
    return "&".join(escape(part) for part in ei.split("^")).rstrip("&")


def _rows(report: ReportView, basis: AlertBasis,
          level: TriageLevel) -> list[tuple[tuple[str, str, str], list[str], str]]:
    named = [line for f in basis.findings
             for line in lines(f"{f.text} ({f.severity})" + (f", {f.where}" if f.where else ""))]
    named = named or [f"{level.value} triage, no finding supports it (see the consistency "
                      "check)" if basis.unsupported else f"{level.value} triage, no single "
                      "finding named"]
    rows = [(CRITICAL_FINDINGS, named, FLAGS[level])]
    links = [line for f in basis.findings if f.link
             for line in lines(f"{f.where or f.text}: {f.link}")]
    if links:
        rows.append((KEY_IMAGES, links, ""))
    if basis.unsupported:
        check = ["Sent although the AI answer failed radraft's consistency check "
                 "(alerts.unsupported: send):", *basis.unsupported]
        rows.append((CHECK, [line for text in check for line in lines(text)], ""))
    reasons = [line for text in report.triage.reasons for line in lines(text)]
    if reasons:
        rows.append((TRIAGE_REASONS, reasons, ""))
    ordered = sorted(report.impression, key=lambda i: i.rank)
    impression = [line for number, item in enumerate(ordered, start=1)
                  for line in lines(f"{number}. {item.text}")]
    if impression:
        rows.append((IMPRESSION, impression, ""))
    return rows


def build_ed_alert(
    report: ReportView, *, order: OrderInfo, patient: PatientInfo, settings: Settings,
    destination: Hl7Destination, job_key: JobKey, now: datetime | None = None,
    escalation_minutes: float | None = None, basis: AlertBasis | None = None,
) -> bytes:
    """Alert bytes for an urgent or critical draft; a routine draft raises OutputBuildError.

    `basis`: the findings that justify the alert (and, if it is sent although the check
    failed, why); None takes the report's findings of the triage's severity.
    `escalation_minutes`: the second alert for a draft nobody acknowledged in that time
    (its own control id, so the receiver does not drop it as a duplicate of the first)."""
    level = report.triage.level
    if not level.alerts_ed:
        raise OutputBuildError(f"a {level.value} draft raises no ED alert")
    basis = basis or basis_from_report(report)
    when = now or datetime.now(UTC)
    kind = "alert" if escalation_minutes is None else "escalation"
    parts = start_result(kind=kind, order=order, patient=patient, settings=settings,
                         destination=destination, job_key=job_key, now=when,
                         message_type=destination.alert_message_type)
    _own_order(parts, order, destination, job_key)
    note = f"{level.value.upper()} triage by AI. {AI_NOTICE} {ALERT_NOTICE}"
    if escalation_minutes is not None:
        note = (f"ESCALATION: not acknowledged within {escalation_minutes:g} minutes. "
                + note)
    add_note(parts, 1, note)
    if basis.unsupported:
        add_note(parts, 2, "SENT ALTHOUGH UNSUPPORTED: the AI answer failed radraft's "
                           "consistency check; a radiologist must review it.")
    timing = parts.order_group.add_group("ORU_R01_TIMING_QTY")
    timing.tq1.tq1_1 = "1"
    timing.tq1.tq1_9 = PRIORITIES[level]
    stamp = observation_stamp(order, settings.site.timezone)  # OBX-14: the exam's time
    set_id = 0
    for code, texts, flag in _rows(report, basis, level):
        for sub_id, text in enumerate(texts, start=1):
            set_id += 1
            add_observation(parts, set_id=set_id, code=code, sub_id=sub_id, text=text,
                            status=destination.result_status, abnormal_flag=flag, now=stamp)
    return finish(parts, destination)
