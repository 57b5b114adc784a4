"""The draft as TID 2000 in an Enhanced SR object (PARTIAL, UNVERIFIED, new series)."""

from __future__ import annotations

from collections.abc import Sequence

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from radraft.reporting.facts import StudyFacts, prior_lines, series_lines
from radraft.reporting.report_schema import DraftReport, Finding
from radraft.reporting.sequence import FrameSequence
from radraft.reporting.sr import tid2000 as t
from radraft.reporting.sr.common import (
    MANUFACTURER,
    BuildContext,
    PredecessorRef,
    cited_instances,
    evidence_datasets,
)
from radraft.reporting.sr.document import RequestInfo, finish_document, requested_procedures

AI_NOTICE = "AI-generated draft, not reviewed by a radiologist."
SR_SERIES_NUMBER = 9901


def device_observer(ctx: BuildContext) -> hd.sr.ObserverContext:
    """TID 1004: the model as the device observer."""
    return hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=ctx.device_uid,
            name=ctx.model_name[:64],
            manufacturer_name=MANUFACTURER,
            model_name=f"{ctx.model_name} {ctx.model_version}"[:64],
        ),
    )


def finding_text(finding: Finding) -> str:
    return f"{finding.system}: {finding.text} [{finding.severity.value}]"


def finding_with_places(finding: Finding, seq: FrameSequence, facts: StudyFacts) -> str:
    """The finding and where people find it: "(series 7, image 271)" from the headers."""
    places = facts.image_places(seq, finding.frames)
    return finding_text(finding) + (f" ({'; '.join(places)})" if places else "")


def numbered_impressions(report: DraftReport) -> list[str]:
    """"1. ..." to "n. ...": positions in the model's order of rank, not its rank numbers
    (unchecked: a model wrote "10." for its only impression)."""
    items = [i for i in sorted(report.impression, key=lambda i: i.rank) if i.text.strip()]
    return [f"{n}. {item.text}" for n, item in enumerate(items, start=1)]


def report_sections(report: DraftReport, seq: FrameSequence, facts: StudyFacts,
                    notes: Sequence[str] = ()) -> list[t.ReportSection]:
    """The draft's parts under CID 7001 headings; empty parts are left out.

    The procedure is the order's or the header's (`facts`), never the model's `exam` or
    `technique`; the AI notice is the document's first statement, then `notes` (what a
    reader must know before the findings, e.g. a failed consistency check).
    """
    notice = t.NarrativeItem(t.COMMENT, AI_NOTICE)
    procedure = [notice, *(t.NarrativeItem(t.COMMENT, n) for n in notes if n.strip()),
                 t.NarrativeItem(t.PROCEDURE_DESCRIPTION, facts.exam_line or
                                         facts.procedure.meaning)]
    procedure += [t.NarrativeItem(t.PROCEDURE_DESCRIPTION, line)
                  for line in series_lines(seq, facts)]
    sections = [t.ReportSection(t.CURRENT_PROCEDURE, procedure)]
    if report.clinical_history.strip():
        sections.append(t.ReportSection(
            t.HISTORY, [t.NarrativeItem(t.HISTORY_ITEM, report.clinical_history)]))
    priors = prior_lines(seq)
    if priors:
        sections.append(t.ReportSection(t.PRIOR_PROCEDURE, [
            t.NarrativeItem(t.PROCEDURE_DESCRIPTION, line) for line in priors]))
    if report.comparison.strip():
        sections.append(t.ReportSection(
            t.PREVIOUS_FINDINGS, [t.NarrativeItem(t.PREVIOUS_FINDING, report.comparison)]))
    findings = [
        t.NarrativeItem(t.FINDING, finding_with_places(f, seq, facts),
                        cited_instances(report, seq, f.frames))
        for f in report.findings
    ] or [t.NarrativeItem(t.FINDING, "No findings reported by the model.")]
    if report.limitations.strip():
        findings.append(t.NarrativeItem(t.COMMENT, f"Limitations: {report.limitations}"))
    sections.append(t.ReportSection(t.FINDINGS, findings))
    impressions = [t.NarrativeItem(t.IMPRESSION, text) for text in numbered_impressions(report)]
    triage = f"Triage (AI): {report.triage.level.value}"
    if report.triage.reasons:
        triage += " (" + "; ".join(report.triage.reasons) + ")"
    impressions.append(t.NarrativeItem(t.COMMENT, triage))
    sections.append(t.ReportSection(t.IMPRESSIONS, impressions))
    recommendations = [
        t.NarrativeItem(t.RECOMMENDATION, text) for text in report.recommendations if text.strip()
    ]
    if recommendations:
        sections.append(t.ReportSection(t.RECOMMENDATIONS, recommendations))
    return sections


def predecessor_datasets(predecessor: PredecessorRef | None) -> Sequence[Dataset] | None:
    if predecessor is None:
        return None
    ds = Dataset()
    ds.StudyInstanceUID = predecessor.study_uid
    ds.SeriesInstanceUID = predecessor.series_uid
    ds.SOPInstanceUID = predecessor.sop_instance_uid
    ds.SOPClassUID = predecessor.sop_class_uid
    return [ds]


def build_diagnostic_sr(report: DraftReport, seq: FrameSequence, ctx: BuildContext, *,
                        predecessor: PredecessorRef | None,
                        order: RequestInfo | None) -> hd.sr.EnhancedSR:
    """The TID 2000 Enhanced SR: evidence, request, predecessor, device observer."""
    content = t.BasicDiagnosticImagingReport(report_sections(report, seq, ctx.facts, ctx.notes),
                                             device_observer(ctx))
    evidence = evidence_datasets(ctx, cited_instances(report, seq))
    sr = hd.sr.EnhancedSR(
        evidence=evidence,
        content=content,
        series_instance_uid=ctx.series_uid("sr"),
        series_number=SR_SERIES_NUMBER,
        sop_instance_uid=ctx.uid("sr"),
        instance_number=1,
        manufacturer=MANUFACTURER,
        is_complete=False,
        is_final=False,
        is_verified=False,
        requested_procedures=requested_procedures(ctx, order),
        previous_versions=predecessor_datasets(predecessor),
        specific_character_set=ctx.charset,
    )
    finish_document(sr, ctx, series_description="radraft AI draft report (unverified)",
                    order=order)
    return sr
