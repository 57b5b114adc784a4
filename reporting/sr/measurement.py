"""The findings as a TID 1500 Measurement Report in a Comprehensive 3D SR object.

One measurement group (TID 1501) per finding: tracking identifier, coded finding type and
site, algorithm identification (TID 4019), a qualitative severity evaluation and the
source images; the image library lists the cited images. OHIF and IHE AI Results
displays show this form.
"""

from __future__ import annotations

import highdicom as hd
from highdicom.sr import CodedConcept
from pydicom.dataset import Dataset

from radraft.reporting.codes import by_key
from radraft.reporting.report_schema import DraftReport, Finding, Severity
from radraft.reporting.sequence import FrameSequence
from radraft.reporting.sr.common import (
    MANUFACTURER,
    BuildContext,
    CitedInstance,
    cited_instances,
    evidence_datasets,
)
from radraft.reporting.sr.diagnostic import device_observer, finding_with_places
from radraft.reporting.sr.document import RequestInfo, finish_document, requested_procedures

TID1500_SERIES_NUMBER = 9902
SEVERITY_NAME = CodedConcept("246112005", "SCT", "Severity")
SEVERITY_VALUES = {
    Severity.NORMAL: CodedConcept("17621005", "SCT", "Normal"),
    Severity.MINOR: CodedConcept("255604002", "SCT", "Mild"),
    Severity.SIGNIFICANT: CodedConcept("6736007", "SCT", "Moderate"),
    Severity.CRITICAL: CodedConcept("24484000", "SCT", "Severe"),
}
FINDING_TEXT = CodedConcept("121071", "DCM", "Finding")
PROCEDURES = {
    "CT": CodedConcept("77477000", "SCT", "CT of unspecified body region"),
    "MR": CodedConcept("113091000", "SCT", "MRI of unspecified body region"),
}
IMAGING_PROCEDURE = CodedConcept("363679005", "SCT", "Imaging procedure")


def _code(key: str) -> CodedConcept:
    code = by_key(key)
    return CodedConcept(code.value, code.scheme, code.meaning)


def _group(ctx: BuildContext, index: int, finding: Finding, cited: list[CitedInstance],
           text: str) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=ctx.uid("tid1500", "finding", str(index)), identifier=f"Finding {index + 1}"
        ),
        finding_type=_code(str(finding.finding_type)),
        algorithm_id=hd.sr.AlgorithmIdentification(
            name=ctx.model_name[:64], version=ctx.model_version[:64], manufacturer=MANUFACTURER
        ),
        finding_sites=[hd.sr.FindingSite(_code(str(finding.finding_site)))],
        qualitative_evaluations=[
            hd.sr.QualitativeEvaluation(SEVERITY_NAME, SEVERITY_VALUES[finding.severity])
        ],
        source_images=[
            hd.sr.SourceImageForMeasurementGroup(
                referenced_sop_class_uid=c.sop_class_uid,
                referenced_sop_instance_uid=c.sop_instance_uid,
                referenced_frame_numbers=list(c.frame_numbers) or None,
            )
            for c in cited
        ] or None,
    )
    # The free text travels with the codes (TID 1501 has no TEXT row; viewers show it).
    container = group[0]
    container.ContentSequence.append(hd.sr.TextContentItem(
        name=FINDING_TEXT, value=text,
        relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
    ))
    return group


def _library(ctx: BuildContext, cited: list[CitedInstance]) -> list[Dataset] | None:
    """Cited images whose headers the caller passed (the image library needs them).

    Enhanced multi-frame objects stay out: highdicom derives library descriptors from
    top-level attributes (Pixel Spacing ...) that such objects keep in functional groups;
    the measurement group still cites them with their frame numbers.
    """
    known = {str(ds.SOPInstanceUID): ds for ds in ctx.sources}
    images = [known[c.sop_instance_uid] for c in cited if c.sop_instance_uid in known]
    return [
        ds for ds in images if "Rows" in ds and "PerFrameFunctionalGroupsSequence" not in ds
    ] or None


def build_measurement_report(report: DraftReport, seq: FrameSequence, ctx: BuildContext, *,
                             order: RequestInfo | None) -> hd.sr.Comprehensive3DSR | None:
    """The TID 1500 report, or None for a draft without findings (nothing to measure)."""
    if not report.findings:
        return None
    cited = cited_instances(report, seq)
    modality = str(ctx.sources[0].get("Modality", ""))
    groups = [
        _group(ctx, i, f, cited_instances(report, seq, f.frames),
               finding_with_places(f, seq, ctx.facts))
        for i, f in enumerate(report.findings)
    ]
    content = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=device_observer(ctx)),
        procedure_reported=PROCEDURES.get(modality, IMAGING_PROCEDURE),
        imaging_measurements=groups,
        referenced_images=_library(ctx, cited),
    )
    sr = hd.sr.Comprehensive3DSR(
        evidence=evidence_datasets(ctx, cited),
        content=content,
        series_instance_uid=ctx.series_uid("tid1500"),
        series_number=TID1500_SERIES_NUMBER,
        sop_instance_uid=ctx.uid("tid1500"),
        instance_number=1,
        manufacturer=MANUFACTURER,
        is_complete=False,
        is_final=False,
        is_verified=False,
        requested_procedures=requested_procedures(ctx, order),
        specific_character_set=ctx.charset,
    )
    finish_document(sr, ctx, series_description="radraft AI findings (TID 1500, unverified)",
                    order=order)
    return sr
