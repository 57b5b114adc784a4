"""Outbound HL7 (ORU^R01 and the ED alert): hl7apy strict 2.5.1 validation, then read back
field by field by a parser no one here wrote (the PyPI package `hl7`)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import hl7
import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from radraft.core.errors import OutputBuildError
from radraft.core.settings import Hl7Destination, Settings
from radraft.ehr.outbound import OrderInfo, PatientInfo, build_ed_alert, build_oru
from radraft.reporting.report_schema import DraftReport

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
SETTINGS = Settings(site={"timezone": "Europe/Paris", "name": "General Hospital"})
RIS = Hl7Destination(kind="hl7", host="127.0.0.1", port=2575, receiving_application="RIS",
                     receiving_facility="GH")
ED = Hl7Destination(kind="hl7", host="127.0.0.1", port=2576, role="ed", charset="8859/1")
ORDER = OrderInfo(accession="ACC-1001", placer_order_number="PL-77", filler_order_number="FI-88",
                  requested_procedure_id="RP1", procedure_code="CTABD",
                  procedure_coding_system="L", procedure_text="CT abdomen with contrast",
                  patient_id="MRN123", patient_id_issuer="HOSP-A", modality="CT",
                  visit_number="V555", patient_class="E", location="ED^BAY3",
                  observed_at=datetime(2015, 2, 3, 10, 16, 58, tzinfo=UTC))
PATIENT = PatientInfo("MRN123", "HOSP-A", "Müller", "Zoë", "19800101", "F")
KEY = ("1.2.3.4", "v1", "ct-generic")
DELIMITERS = "pipe | caret ^ amp & tilde ~ backslash \\ end"


def _draft(level: str = "routine", findings: list[dict[str, Any]] | None = None,
           **changes: Any) -> DraftReport:
    data: dict[str, Any] = dict(
        exam="CT abdomen", technique="Portal venous phase\nthin slices",
        comparison="None.", clinical_history="Pain, fever.",
        findings=findings if findings is not None else [
            {"system": "liver", "text": DELIMITERS, "severity": "critical",
             "finding_type": "SCT:52988006", "finding_site": "SCT:10200004", "frames": [1]},
            {"system": "spleen", "text": "Normal.", "severity": "normal",
             "finding_type": "SCT:17621005", "finding_site": "SCT:78961009", "frames": []},
        ],
        impression=[{"rank": 2, "text": "Second."}, {"rank": 1, "text": "Liver lesion."}],
        recommendations=["MRI in 3 months."],
        triage={"level": level, "reasons": ["possible bleed"],
                "critical_findings": ["Active bleeding in the liver"] if level != "routine"
                else []},
        limitations="",
    )
    data.update(changes)
    return DraftReport.model_validate(data)


def _validated(data: bytes, encoding: str) -> hl7.Message:
    text = data.decode(encoding)
    assert "\n" not in text and text.endswith("\r")
    strict = parse_message(text.rstrip("\r"), validation_level=VALIDATION_LEVEL.STRICT)
    assert strict.validate() is True
    return hl7.parse(text)


def _obx(msg: hl7.Message) -> list[Any]:
    return list(msg.segments("OBX"))


def test_oru_validates_and_reads_back_field_by_field() -> None:
    data = build_oru(_draft(), order=ORDER, patient=PATIENT, settings=SETTINGS, destination=RIS,
                     job_key=KEY, redraft=False, now=NOW)
    msg = _validated(data, "utf-8")
    msh = msg.segment("MSH")
    assert str(msh[3]) == "RADRAFT" and str(msh[4]) == "General Hospital"
    assert (str(msh[5]), str(msh[6])) == ("RIS", "GH")
    assert str(msh[7]) == "20261124103000+0100"
    assert str(msh[9]) == "ORU^R01^ORU_R01"
    assert 0 < len(str(msh[10])) <= 20
    assert (str(msh[11]), str(msh[12]), str(msh[18])) == ("P", "2.5.1", "UNICODE UTF-8")
    pid = msg.segment("PID")
    assert str(pid[3][0][0]) == "MRN123" and str(pid[3][0][3]) == "HOSP-A"
    assert str(pid[3][0][4]) == "MR"
    assert str(pid[5]) == "Müller^Zoë"
    assert str(msg.segment("PV1")[2]) == "E"
    assert str(msg.segment("PV1")[19]) == "V555"
    orc = msg.segment("ORC")
    assert (str(orc[1]), str(orc[2]), str(orc[3])) == ("RE", "PL-77", "FI-88")
    obr = msg.segment("OBR")
    assert (str(obr[2]), str(obr[3]), str(obr[18])) == ("PL-77", "FI-88", "ACC-1001")
    assert str(obr[4]) == "CTABD^CT abdomen with contrast^L"
    assert (str(obr[24]), str(obr[25])) == ("CT", "R")
    assert str(msg.segment("NTE")[3]) == "AI-generated draft, not reviewed by a radiologist."
    rows = _obx(msg)
    assert [str(r[1]) for r in rows] == [str(i) for i in range(1, len(rows) + 1)]
    assert all(str(r[2]) == "TX" and str(r[11]) == "R" for r in rows)
    by_code = [(str(r[3][0][0]), str(r[4]), msg.unescape(str(r[5])), str(r[8])) for r in rows]
    # The procedure is the order's; the model's exam/technique text is not stated.
    assert [t for c, _s, t, _f in by_code if c == "55111-9"] == ["CT abdomen with contrast"]
    assert str(obr[7]) == "20150203111658+0100" and str(obr[22]) == "20261124103000+0100"
    assert {str(r[14]) for r in rows} == {"20150203111658+0100"}
    assert ("59776-5", "1", f"liver: {DELIMITERS}", "AA") in by_code
    assert ("59776-5", "2", "spleen: Normal.", "") in by_code
    impressions = [text for code, _sub, text, _f in by_code if code == "19005-8"]
    assert impressions == ["1. Liver lesion.", "2. Second."]
    assert ("18783-1", "1", "MRI in 3 months.", "") in by_code


def test_delimiters_are_escaped_not_split() -> None:
    data = build_oru(_draft(), order=ORDER, patient=PATIENT, settings=SETTINGS, destination=RIS,
                     job_key=KEY, redraft=False, now=NOW)
    text = data.decode("utf-8")
    assert "pipe \\F\\ caret \\S\\ amp \\T\\ tilde \\R\\ backslash \\E\\ end" in text
    msg = hl7.parse(text)
    [liver] = [r for r in _obx(msg) if "liver" in str(r[5])]
    assert len(liver) == 15  # no field split off by a raw |
    value = liver[5]
    assert len(value) == 1 and isinstance(value[0], str)  # one repetition, no components


def test_control_id_is_deterministic_and_per_job() -> None:
    def control(key: tuple[str, str, str], destination: Hl7Destination = RIS) -> str:
        data = build_oru(_draft(), order=ORDER, patient=PATIENT, settings=SETTINGS,
                         destination=destination, job_key=key, redraft=False, now=NOW)
        return str(hl7.parse(data.decode())["MSH"][0][10])

    assert control(KEY) == control(KEY)
    assert control(KEY) != control(("1.2.3.4", "v2", "ct-generic"))
    other = RIS.model_copy(update={"port": 2599})
    assert control(KEY) != control(KEY, other)


def test_redraft_goes_out_as_r_with_the_same_order_numbers() -> None:
    first = hl7.parse(build_oru(_draft(), order=ORDER, patient=PATIENT, settings=SETTINGS,
                                destination=RIS, job_key=KEY, redraft=False, now=NOW).decode())
    data = build_oru(_draft(), order=ORDER, patient=PATIENT, settings=SETTINGS, destination=RIS,
                     job_key=("1.2.3.4", "v2", "ct-generic"), redraft=True, now=NOW)
    again = _validated(data, "utf-8")
    for field in (2, 3, 18, 25):
        assert str(again.segment("OBR")[field]) == str(first.segment("OBR")[field])
    assert str(again.segment("OBR")[25]) == "R"
    assert all(str(r[11]) == "R" for r in _obx(again))
    notes = [str(n[3]) for n in again.segments("NTE")]
    assert notes[0] == "AI-generated draft, not reviewed by a radiologist."
    assert notes[1].startswith("Re-draft")


def test_p_only_where_the_destination_says_so() -> None:
    verified = RIS.model_copy(update={"result_status": "P"})
    msg = _validated(build_oru(_draft(), order=ORDER, patient=PATIENT, settings=SETTINGS,
                               destination=verified, job_key=KEY, redraft=False, now=NOW),
                     "utf-8")
    assert str(msg.segment("OBR")[25]) == "P"
    assert all(str(r[11]) == "P" for r in _obx(msg))


def test_no_findings_draft() -> None:
    msg = _validated(build_oru(_draft(findings=[]), order=ORDER, patient=PATIENT,
                               settings=SETTINGS, destination=RIS, job_key=KEY, redraft=False,
                               now=NOW), "utf-8")
    findings = [msg.unescape(str(r[5])) for r in _obx(msg) if str(r[3][0][0]) == "59776-5"]
    assert findings == ["No findings reported by the model."]


def test_critical_alert_for_the_ed() -> None:
    data = build_ed_alert(_draft("critical"), order=ORDER, patient=PATIENT, settings=SETTINGS,
                          destination=ED, job_key=KEY, now=NOW)
    msg = _validated(data, "latin-1")
    assert str(msg.segment("MSH")[18]) == "8859/1"
    assert str(msg.segment("PID")[5]) == "Müller^Zoë"  # latin-1 carries umlauts
    assert str(msg.segment("TQ1")[9]) == "S"
    assert str(msg.segment("NTE")[3]).startswith("CRITICAL triage by AI.")
    first = _obx(msg)[0]
    # The finding that justifies the alert (not the model's free-text summary).
    assert msg.unescape(str(first[5])) == f"liver: {DELIMITERS} (critical)"
    assert str(first[8]) == "AA" and str(first[11]) == "R"
    alert_id = str(msg.segment("MSH")[10])
    oru = build_oru(_draft("critical"), order=ORDER, patient=PATIENT, settings=SETTINGS,
                    destination=ED, job_key=KEY, redraft=False, now=NOW)
    assert str(hl7.parse(oru.decode("latin-1")).segment("MSH")[10]) != alert_id


def test_urgent_alert_priority_and_routine_refused() -> None:
    msg = _validated(build_ed_alert(_draft("urgent"), order=ORDER, patient=PATIENT,
                                    settings=SETTINGS, destination=ED, job_key=KEY, now=NOW),
                     "latin-1")
    assert str(msg.segment("TQ1")[9]) == "A"
    assert str(_obx(msg)[0][8]) == "A"
    with pytest.raises(OutputBuildError, match="routine"):
        build_ed_alert(_draft("routine"), order=ORDER, patient=PATIENT, settings=SETTINGS,
                       destination=ED, job_key=KEY, now=NOW)


def test_ascii_destination_and_unknown_charset() -> None:
    ascii_ris = RIS.model_copy(update={"charset": "ASCII"})
    data = build_oru(_draft(), order=ORDER, patient=PATIENT, settings=SETTINGS,
                     destination=ascii_ris, job_key=KEY, redraft=False, now=NOW)
    msg = _validated(data, "ascii")
    assert str(msg.segment("PID")[5]) == "M?ller^Zo?"
    odd = RIS.model_copy(update={"charset": "EBCDIC"})
    with pytest.raises(OutputBuildError, match="EBCDIC"):
        build_oru(_draft(), order=ORDER, patient=PATIENT, settings=SETTINGS, destination=odd,
                  job_key=KEY, redraft=False, now=NOW)


def test_unsupported_alert_message_type_is_refused() -> None:
    odd = ED.model_copy(update={"alert_message_type": "ADT^A01"})
    with pytest.raises(OutputBuildError, match="ADT"):
        build_ed_alert(_draft("critical"), order=ORDER, patient=PATIENT, settings=SETTINGS,
                       destination=odd, job_key=KEY, now=NOW)


def test_long_texts_are_wrapped_and_long_descriptions_shortened() -> None:
    words = ("segment | VII ^ lesion & rim ~ enhancing \\ " * 20).strip()[:600]
    draft = _draft(findings=[{"system": "liver", "text": words, "severity": "significant",
                              "finding_type": "SCT:52988006", "finding_site": "SCT:10200004"}])
    order = dataclasses.replace(ORDER, procedure_text="T" * 256)
    msg = _validated(build_oru(draft, order=order, patient=PATIENT, settings=SETTINGS,
                               destination=RIS, job_key=KEY, redraft=False, now=NOW), "utf-8")
    rows = [r for r in _obx(msg) if str(r[3][0][0]) == "59776-5"]
    assert len(rows) > 1
    assert all(len(str(r[5])) <= 199 and str(r[8]) == "A" for r in rows)
    assert [str(r[4]) for r in rows] == [str(i) for i in range(1, len(rows) + 1)]
    joined = " ".join(msg.unescape(str(r[5])) for r in rows)
    assert joined.split() == f"liver: {words}".split()
    assert str(msg.segment("OBR")[4][0][1]) == "T" * 196 + "..."


def test_identifier_too_long_for_its_type_is_named_not_quoted() -> None:
    patient = PatientInfo("MRN123", "AUTHORITY-WITH-A-VERY-LONG-NAME", "Secret", "Name")
    with pytest.raises(OutputBuildError, match="PID-3") as caught:
        build_oru(_draft(), order=ORDER, patient=patient, settings=SETTINGS, destination=RIS,
                  job_key=KEY, redraft=False, now=NOW)
    assert "AUTHORITY" not in str(caught.value) and "Secret" not in str(caught.value)


def test_unknown_name_is_sent_as_the_hl7_null() -> None:
    msg = _validated(build_oru(_draft(), order=ORDER, patient=PatientInfo("MRN123", "HOSP-A"),
                               settings=SETTINGS, destination=RIS, job_key=KEY, redraft=False,
                               now=NOW), "utf-8")
    assert str(msg.segment("PID")[5]) == '""'
