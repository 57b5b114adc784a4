"""The TID 2000 template class refuses content the template does not allow."""

from __future__ import annotations

import highdicom as hd
import pytest
from highdicom.sr import CodedConcept
from pydicom.sr.codedict import codes

from radraft.reporting.sr.common import CitedInstance
from radraft.reporting.sr.tid2000 import (
    FINDING,
    FINDINGS,
    IMPRESSION,
    BasicDiagnosticImagingReport,
    NarrativeItem,
    ReportSection,
)

DEVICE = hd.sr.ObserverContext(
    observer_type=codes.DCM.Device,
    observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(uid="1.2.3"),
)
IMAGE = CitedInstance("1.1", "1.1.1", "1.1.1.1", "1.2.840.10008.5.1.4.1.1.2.1", False, (3, 4))


def test_valid_report_has_title_template_and_references() -> None:
    report = BasicDiagnosticImagingReport(
        [ReportSection(FINDINGS, [NarrativeItem(FINDING, "Lesion.", [IMAGE])])], DEVICE)
    root = report[0]
    assert root.ConceptNameCodeSequence[0].CodeValue == "18748-4"
    assert root.ContentTemplateSequence[0].TemplateIdentifier == "2000"
    section = root.ContentSequence[-1]
    text = section.ContentSequence[0]
    image = text.ContentSequence[0]
    assert (text.TextValue, image.RelationshipType) == ("Lesion.", "INFERRED FROM")
    assert list(image.ReferencedSOPSequence[0].ReferencedFrameNumber) == [3, 4]


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ([], "at least one section"),
        ([ReportSection(CodedConcept("121071", "DCM", "Finding"),
                        [NarrativeItem(FINDING, "x")])], "not in CID 7001"),
        ([ReportSection(FINDINGS, [])], "has no items"),
        ([ReportSection(FINDINGS, [NarrativeItem(CodedConcept("1", "L", "x"), "x")])],
         "not in CID 7002"),
        ([ReportSection(FINDINGS, [NarrativeItem(IMPRESSION, "  ")])], "empty text"),
    ],
)
def test_bad_content_is_refused(sections: list[ReportSection], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BasicDiagnosticImagingReport(sections, DEVICE)


def test_person_observer_is_refused() -> None:
    person = hd.sr.ObserverContext(
        observer_type=codes.DCM.Person,
        observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
            name="Doe^J"),
    )
    with pytest.raises(ValueError, match="Device"):
        BasicDiagnosticImagingReport(
            [ReportSection(FINDINGS, [NarrativeItem(FINDING, "x")])], person)
