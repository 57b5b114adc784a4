"""PID-5 from every PN component, OBR-24 from HL7 table 0074, exam vs draft times, and
non-ASCII names through the ORU (hl7apy STRICT and python-hl7 read-back)."""

from __future__ import annotations

from datetime import UTC, datetime

import hl7
import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message
from pydantic import ValidationError

from radraft.core.settings import Hl7Destination, Settings
from radraft.ehr.outbound import (
    OrderInfo,
    PatientInfo,
    build_oru,
    patient_from_pn,
    patient_from_xpn,
)
from radraft.reporting.report_schema import DraftReport

SETTINGS = Settings(site={"timezone": "America/New_York"})
RIS = Hl7Destination(kind="hl7", host="127.0.0.1", port=2575)
NOW = datetime(2026, 12, 6, 1, 0, tzinfo=UTC)
EXAM = datetime(2015, 2, 3, 16, 16, 58, tzinfo=UTC)
REPORT = DraftReport.model_validate({
    "exam": "normal", "technique": "", "comparison": "", "clinical_history": "",
    "findings": [], "impression": [{"rank": 6, "text": "Ünremarkable"}], "recommendations": [],
    "triage": {"level": "routine"}, "limitations": "",
})


def _oru(patient: PatientInfo, *, modality: str = "CT",
         destination: Hl7Destination = RIS) -> hl7.Message:
    order = OrderInfo(accession="A1", modality=modality, procedure_text="CT HEAD",
                      observed_at=EXAM)
    data = build_oru(REPORT, order=order, patient=patient, settings=SETTINGS,
                     destination=destination, job_key=("1.2", "v", "p"), redraft=False,
                     now=NOW)
    text = data.decode("utf-8")
    assert parse_message(text.rstrip("\r"), validation_level=VALIDATION_LEVEL.STRICT).validate()
    return hl7.parse(text)


@pytest.mark.parametrize(("pn", "xpn"), [
    ("Multi^Mr^a", "Multi^Mr^a"),
    ("Müller-Łukasz^Zoë^Ana^Dr.^Jr.", "Müller-Łukasz^Zoë^Ana^Jr.^Dr."),  # prefix/suffix swap
    ("Yamada^Tarou=山田^太郎=やまだ^たろう", "Yamada^Tarou"),  # the alphabetic group
    ("Doe^^^^III", "Doe^^^III"),
    ("山田^太郎", "山田^太郎"),
])
def test_pid5_carries_every_pn_component(pn: str, xpn: str) -> None:
    msg = _oru(patient_from_pn("MRN1", pn, birth_date="19800101", sex="F"))
    assert str(msg.segment("PID")[5]) == xpn
    assert str(msg.segment("MSH")[18]) == "UNICODE UTF-8"


def test_the_ehr_store_xpn_round_trips() -> None:
    patient = patient_from_xpn("MRN1", "Smith^John^Quincy^Jr^Dr", sex="M")
    assert patient.xpn() == ("Smith", "John", "Quincy", "Jr", "Dr")
    assert str(_oru(patient).segment("PID")[5]) == "Smith^John^Quincy^Jr^Dr"


@pytest.mark.parametrize(("modality", "service"), [
    ("CT", "CT"), ("MR", "NMR"), ("PT", "NMS"), ("NM", "NMS"), ("US", "RUS"), ("CR", "RAD"),
    ("DX", "RAD"), ("MG", "RAD"), ("XA", "RAD"),
])
def test_obr24_is_table_0074_not_the_dicom_modality(modality: str, service: str) -> None:
    assert str(_oru(PatientInfo("MRN1", family_name="X"), modality=modality)
               .segment("OBR")[24]) == service


def test_obr24_per_destination_and_checked_against_table_0074() -> None:
    local = RIS.model_copy(update={"diagnostic_service": {"MR": "RAD"}})
    assert str(_oru(PatientInfo("MRN1", family_name="X"), modality="MR", destination=local)
               .segment("OBR")[24]) == "RAD"
    with pytest.raises(ValidationError, match="table 0074"):
        Hl7Destination(kind="hl7", host="h", port=1, diagnostic_service={"PT": "PHYS"})


def test_exam_time_in_obr7_and_obx14_draft_time_in_msh7_and_obr22() -> None:
    msg = _oru(PatientInfo("MRN1", family_name="X"))
    obr = msg.segment("OBR")
    assert str(obr[7]) == "20150203111658-0500"  # the exam, in the site's zone
    assert {str(o[14]) for o in msg.segments("OBX")} == {"20150203111658-0500"}
    assert str(msg.segment("MSH")[7]) == str(obr[22]) == "20261205200000-0500"
    assert [str(o[5]) for o in msg.segments("OBX") if str(o[3][0][0]) == "19005-8"] == [
        "1. Ünremarkable"]


def test_a_date_without_time_is_sent_as_a_date() -> None:
    order = OrderInfo(accession="A1", modality="CT", observed_at=EXAM, observed_date_only=True)
    data = build_oru(REPORT, order=order, patient=PatientInfo("MRN1", family_name="X"),
                     settings=SETTINGS, destination=RIS, job_key=("1.2", "v", "p"),
                     redraft=False, now=NOW)
    assert str(hl7.parse(data.decode())["OBR"][0][7]) == "20150203"


def test_notes_follow_the_ai_notice() -> None:
    order = OrderInfo(accession="A1", modality="CT", observed_at=EXAM)
    data = build_oru(REPORT, order=order, patient=PatientInfo("MRN1", family_name="X"),
                     settings=SETTINGS, destination=RIS, job_key=("1.2", "v", "p"),
                     redraft=True, now=NOW, notes=["AI triage unsupported — radiologist review"])
    notes = [(str(n[1]), str(n[3])) for n in hl7.parse(data.decode()).segments("NTE")]
    assert notes[0] == ("1", "AI-generated draft, not reviewed by a radiologist.")
    assert notes[1] == ("2", "AI triage unsupported — radiologist review")
    assert notes[2][0] == "3" and notes[2][1].startswith("Re-draft")


def test_an_unknown_exam_time_is_left_empty_not_invented() -> None:
    order = OrderInfo(accession="A1", modality="CT")
    data = build_oru(REPORT, order=order, patient=PatientInfo("MRN1", family_name="X"),
                     settings=SETTINGS, destination=RIS, job_key=("1.2", "v", "p"),
                     redraft=False, now=NOW)
    text = data.decode()
    assert parse_message(text.rstrip("\r"), validation_level=VALIDATION_LEVEL.STRICT).validate()
    msg = hl7.parse(text)
    assert str(msg["OBR"][0][7]) == ""
    assert all(len(o) <= 14 or str(o[14]) == "" for o in msg.segments("OBX"))
    assert str(msg["OBR"][0][22]) == "20261205200000-0500"
