"""TID 2000 Basic Diagnostic Imaging Report as a highdicom-style template class.

highdicom ships no TID 2000 template (highdicom issue #355); this one follows its
conventions: a `Template` (a content sequence) whose constructor refuses content the
template does not allow. PS3.16 TID 2000 (Basic Diagnostic Imaging Report), TID 2002
(Report Narrative), CID 7001 (headings), CID 7002 (observations), CID 7003 (purposes of
reference), TID 1001/1004 (observation context, device observer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import highdicom as hd
from highdicom.sr import CodedConcept, RelationshipTypeValues
from highdicom.sr.templates import Template
from pydicom.sr.codedict import codes

from radraft.reporting.sr.common import CitedInstance

TITLE = CodedConcept("18748-4", "LN", "Diagnostic imaging report")
ENGLISH = CodedConcept("en", "RFC5646", "English")

# CID 7001 Diagnostic Imaging Report Headings (the ones radraft writes).
HISTORY = CodedConcept("121060", "DCM", "History")
CURRENT_PROCEDURE = CodedConcept("121064", "DCM", "Current Procedure Descriptions")
PRIOR_PROCEDURE = CodedConcept("121066", "DCM", "Prior Procedure Descriptions")
PREVIOUS_FINDINGS = CodedConcept("121068", "DCM", "Previous Findings")
FINDINGS = CodedConcept("121070", "DCM", "Findings")
IMPRESSIONS = CodedConcept("121072", "DCM", "Impressions")
RECOMMENDATIONS = CodedConcept("121074", "DCM", "Recommendations")
HEADINGS = frozenset(
    c.value for c in (HISTORY, CURRENT_PROCEDURE, PRIOR_PROCEDURE, PREVIOUS_FINDINGS, FINDINGS,
                      IMPRESSIONS, RECOMMENDATIONS)
)

# CID 7002 Diagnostic Imaging Report Elements.
HISTORY_ITEM = CodedConcept("121060", "DCM", "History")
PROCEDURE_DESCRIPTION = CodedConcept("121065", "DCM", "Procedure Description")
PREVIOUS_FINDING = CodedConcept("121069", "DCM", "Previous Finding")
FINDING = CodedConcept("121071", "DCM", "Finding")
IMPRESSION = CodedConcept("121073", "DCM", "Impression")
RECOMMENDATION = CodedConcept("121075", "DCM", "Recommendation")
COMMENT = CodedConcept("121106", "DCM", "Comment")
ELEMENTS = frozenset(
    c.value for c in (HISTORY_ITEM, PROCEDURE_DESCRIPTION, PREVIOUS_FINDING, FINDING,
                      IMPRESSION, RECOMMENDATION, COMMENT)
)

# CID 7003 Diagnostic Imaging Report Purposes of Reference.
BEST_ILLUSTRATION = CodedConcept("121080", "DCM", "Best illustration of finding")


@dataclass(frozen=True, slots=True)
class NarrativeItem:
    """One TEXT observation (CID 7002 name) with the images it was inferred from."""

    name: CodedConcept
    text: str
    images: Sequence[CitedInstance] = ()


@dataclass(frozen=True, slots=True)
class ReportSection:
    """A CID 7001 heading and its narrative items (TID 2002)."""

    heading: CodedConcept
    items: Sequence[NarrativeItem] = field(default_factory=tuple)


class BasicDiagnosticImagingReport(Template):
    """:dcm:`TID 2000 <part16/chapter_A.html#sect_TID_2000>` Basic Diagnostic Imaging Report.

    Root CONTAINER (18748-4, LN, "Diagnostic imaging report") with the language
    (TID 1204), the observation context (TID 1001: here a device observer, TID 1004),
    then one CONTAINER per section, each holding TEXT items (TID 2002) that may be
    INFERRED FROM IMAGE references (with frame numbers for multi-frame images).
    """

    def __init__(
        self,
        sections: Sequence[ReportSection],
        observer_device_context: hd.sr.ObserverContext,
        language: CodedConcept = ENGLISH,
    ) -> None:
        super().__init__(is_root=True)
        if not isinstance(observer_device_context, hd.sr.ObserverContext):
            raise TypeError('Argument "observer_device_context" must be an ObserverContext.')
        if observer_device_context.observer_type != codes.DCM.Device:
            raise ValueError('Argument "observer_device_context" must have Observer Type Device.')
        if not sections:
            raise ValueError("A TID 2000 report needs at least one section.")
        root = hd.sr.ContainerContentItem(name=TITLE, template_id="2000",
                                          is_content_continuous=False)
        content = hd.sr.ContentSequence()
        content.extend(hd.sr.LanguageOfContentItemAndDescendants(language))
        content.extend(observer_device_context)
        for section in sections:
            content.append(self._section(section))
        root.ContentSequence = content
        self.append(root)

    @staticmethod
    def _section(section: ReportSection) -> hd.sr.ContainerContentItem:
        if section.heading.value not in HEADINGS or section.heading.scheme_designator != "DCM":
            raise ValueError(f"Section heading {section.heading.value} is not in CID 7001.")
        if not section.items:
            raise ValueError(f'Section "{section.heading.meaning}" has no items.')
        # SEPARATE: each item is a statement of its own (dsr2html then shows one per line
        # instead of running a section's sentences together).
        container = hd.sr.ContainerContentItem(
            name=section.heading, relationship_type=RelationshipTypeValues.CONTAINS,
            is_content_continuous=False,
        )
        items = hd.sr.ContentSequence()
        for item in section.items:
            items.append(BasicDiagnosticImagingReport._text(item))
        container.ContentSequence = items
        return container

    @staticmethod
    def _text(item: NarrativeItem) -> hd.sr.TextContentItem:
        if item.name.value not in ELEMENTS or item.name.scheme_designator != "DCM":
            raise ValueError(f"Observation name {item.name.value} is not in CID 7002.")
        if not item.text.strip():
            raise ValueError(f'Observation "{item.name.meaning}" has an empty text.')
        text = hd.sr.TextContentItem(
            name=item.name, value=item.text, relationship_type=RelationshipTypeValues.CONTAINS
        )
        if item.images:
            refs = hd.sr.ContentSequence()
            for image in item.images:
                refs.append(hd.sr.ImageContentItem(
                    name=BEST_ILLUSTRATION,
                    referenced_sop_class_uid=image.sop_class_uid,
                    referenced_sop_instance_uid=image.sop_instance_uid,
                    referenced_frame_numbers=list(image.frame_numbers) or None,
                    relationship_type=RelationshipTypeValues.INFERRED_FROM,
                ))
            text.ContentSequence = refs
        return text
