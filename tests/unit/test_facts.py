"""The exam's facts from headers and order: procedure precedence, observation time, names,
and how a cited frame is named for people."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from radraft.ehr.outbound import OrderInfo
from radraft.reporting.facts import (
    display_name,
    observation_time,
    procedure_of,
    study_facts,
)
from radraft.reporting.sequence import FrameRef, FrameSequence, Segment

ZONE = "Europe/Paris"


def _ds(**attrs: Any) -> Dataset:
    ds = Dataset()
    for keyword, value in attrs.items():
        setattr(ds, keyword, value)
    return ds


def _code(value: str = "", meaning: str = "") -> Dataset:
    item = Dataset()
    if value:
        item.CodeValue, item.CodingSchemeDesignator = value, "LN"
    if meaning:
        item.CodeMeaning = meaning
    return item


def test_procedure_order_first_then_valid_code_then_descriptions() -> None:
    header = _ds(Modality="MR", StudyDescription="MR BRAIN", RequestedProcedureDescription="RPD",
                 ProcedureCodeSequence=DicomSequence([_code(), _code("24590-2", "MR Brain")]))
    ordered = OrderInfo(accession="A", procedure_code="MRBR", procedure_text="MRI brain w/o")
    assert procedure_of([header], ordered).meaning == "MRI brain w/o"
    assert procedure_of([header], ordered).source == "order"
    found = procedure_of([header], None)
    assert (found.code, found.meaning, found.source) == (
        "24590-2", "MR Brain", "Procedure Code Sequence")  # the empty item is skipped
    header.ProcedureCodeSequence = DicomSequence([_code()])
    assert procedure_of([header], None).meaning == "RPD"
    del header.RequestedProcedureDescription
    assert procedure_of([header], None).source == "Study Description"
    assert procedure_of([_ds(Modality="CT")], None).meaning == "CT study"


@pytest.mark.parametrize(("attrs", "expected", "date_only"), [
    ({"StudyDate": "20150203", "StudyTime": "111658.123"},
     datetime(2015, 2, 3, 10, 16, 58, tzinfo=UTC), False),
    ({"StudyDate": "20150203", "StudyTime": "111658", "TimezoneOffsetFromUTC": "+0000"},
     datetime(2015, 2, 3, 11, 16, 58, tzinfo=UTC), False),
    ({"StudyDate": "20150203", "SeriesDate": "20150203", "SeriesTime": "1130"},
     datetime(2015, 2, 3, 10, 30, tzinfo=UTC), False),  # no Study Time: the series'
    ({"StudyDate": "20150203"}, datetime(2015, 2, 2, 23, 0, tzinfo=UTC), True),
    ({"AcquisitionDateTime": "20150203111658.000000-0500"},
     datetime(2015, 2, 3, 16, 16, 58, tzinfo=UTC), False),
    ({"StudyDate": "20150231", "StudyTime": "1200"}, None, False),  # not a date
    ({}, None, False),
])
def test_observation_time(attrs: dict[str, str], expected: datetime | None,
                          date_only: bool) -> None:
    moment, only = observation_time([_ds(**attrs)], ZONE)
    assert moment == expected and only is date_only


def test_display_name_follows_pn_components() -> None:
    assert display_name("Müller^Zoë^Ana^Dr.^Jr.") == "Müller, Dr. Zoë Ana, Jr."
    assert display_name("Multi^Mr^a") == "Multi, Mr a"
    assert display_name("Yamada^Tarou=山田^太郎") == "Yamada, Tarou"


def test_a_cited_frame_is_named_by_its_instance_not_its_index() -> None:
    current = _ds(StudyInstanceUID="1.1", SOPInstanceUID="1.1.1.5", SeriesNumber=7,
                  InstanceNumber=271, StudyDate="20261120", PatientName="A^B", PatientID="P")
    prior = _ds(StudyInstanceUID="1.0", SOPInstanceUID="1.0.1.1", SeriesNumber=3,
                InstanceNumber=12, StudyDate="20251120")
    refs = [FrameRef("1.1", "1.1.1", "1.1.1.5", "1.2.3", None, False),
            FrameRef("1.1", "1.1.2", "1.1.2.9", "1.2.3", 4, False),  # multi-frame, no header
            FrameRef("1.0", "1.0.1", "1.0.1.1", "1.2.3", None, True)]
    segments = [Segment(0, 0, 2, "1.1", "1.1.1", "20261120", "CT", "ABD PV", "portal venous",
                        "axial", "abdomen", "single", 2, False),
                Segment(1, 2, 3, "1.0", "1.0.1", "20251120", "CT", "ABD", "portal venous",
                        "axial", "abdomen", "single", 1, True)]
    seq = FrameSequence(np.zeros((3, 2, 2, 3), np.uint8), segments, refs)
    facts = study_facts([current, prior], seq, order=None, site_zone=ZONE,
                        current_study_uid="1.1")
    assert facts.image_place(seq, 0) == "series 7, image 271"
    assert facts.image_place(seq, 1) == "ABD PV image, frame 4"
    assert facts.image_place(seq, 2) == "series 3, image 12 (prior, 2025-11-20)"
    assert facts.image_places(seq, [0, 0, 2]) == ["series 7, image 271",
                                                  "series 3, image 12 (prior, 2025-11-20)"]
    assert "outside" in facts.image_place(seq, 9)
