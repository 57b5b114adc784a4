"""The ED alert's identity and content: its own order numbers and OBR-4 (configurable per
destination), the parent order, the named findings with series/image and key image link,
and the "sent although unsupported" note; hl7apy STRICT reads it back."""

from __future__ import annotations

from datetime import UTC, datetime

import hl7
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from radraft.core.settings import Hl7Destination, Settings
from radraft.ehr.outbound import (
    AlertBasis,
    AlertFinding,
    OrderInfo,
    PatientInfo,
    build_ed_alert,
    build_oru,
)
from radraft.ehr.outbound.alert import alert_order_number
from radraft.reporting.report_schema import DraftReport

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
SETTINGS = Settings()
ED = Hl7Destination(kind="hl7", host="127.0.0.1", port=2576, role="ed")
ORDER = OrderInfo(accession="ACC-1", placer_order_number="PL-77^HIS", filler_order_number="FI-88",
                  procedure_code="CTABD", procedure_text="CT abdomen", patient_id="MRN1")
PATIENT = PatientInfo("MRN1", family_name="Doe", given_name="Jo")
KEY = ("1.2.3.4", "v1", "ct-generic")
REPORT = DraftReport.model_validate({
    "exam": "CT", "technique": "", "comparison": "", "clinical_history": "",
    "findings": [{"system": "brain", "text": "acute subdural haematoma, 9 mm",
                  "severity": "critical", "finding_type": "SCT:50960005",
                  "finding_site": "SCT:12738006", "frames": [4]}],
    "impression": [{"rank": 3, "text": "Acute SDH."}], "recommendations": [],
    "triage": {"level": "critical", "reasons": ["mass effect"], "critical_findings": ["SDH"]},
    "limitations": "",
})
BASIS = AlertBasis(findings=(AlertFinding(
    "brain: acute subdural haematoma, 9 mm", "critical", "series 3, image 45",
    "https://radraft.example.org/studies/1.2.3.4#frame-4"),))


def _read(data: bytes) -> hl7.Message:
    text = data.decode("utf-8")
    assert parse_message(text.rstrip("\r"),
                         validation_level=VALIDATION_LEVEL.STRICT).validate() is True
    return hl7.parse(text)


def test_the_alert_is_its_own_order_and_service() -> None:
    alert = _read(build_ed_alert(REPORT, order=ORDER, patient=PATIENT, settings=SETTINGS,
                                 destination=ED, job_key=KEY, now=NOW, basis=BASIS))
    oru = _read(build_oru(REPORT, order=ORDER, patient=PATIENT, settings=SETTINGS,
                          destination=ED, job_key=KEY, redraft=False, now=NOW))
    own = alert_order_number(KEY)
    for n in (2, 3):
        assert str(alert.segment("OBR")[n]) == f"{own}^RADRAFT"
        assert str(alert.segment("ORC")[n]) == f"{own}^RADRAFT"
        assert str(alert.segment("OBR")[n]) != str(oru.segment("OBR")[n])
    assert str(alert.segment("OBR")[4]) == "RADRAFT-AIALERT^AI triage alert^L"
    assert str(oru.segment("OBR")[4]).startswith("CTABD^")
    assert str(alert.segment("OBR")[29]) == "PL-77&HIS^FI-88"
    assert str(alert.segment("OBR")[18]) == "ACC-1"  # the accession still relates them
    # A re-draft (new version) keeps the alert's order: its alert replaces the first.
    assert alert_order_number(("1.2.3.4", "v2", "ct-generic")) == own


def test_the_alert_service_is_configurable_per_destination() -> None:
    ed = ED.model_copy(update={"alert_service": "CRIT^Critical result notification^99ED"})
    alert = _read(build_ed_alert(REPORT, order=ORDER, patient=PATIENT, settings=SETTINGS,
                                 destination=ed, job_key=KEY, now=NOW, basis=BASIS))
    assert str(alert.segment("OBR")[4]) == "CRIT^Critical result notification^99ED"


def test_the_alert_names_its_finding_where_and_links_the_key_image() -> None:
    alert = _read(build_ed_alert(REPORT, order=ORDER, patient=PATIENT, settings=SETTINGS,
                                 destination=ED, job_key=KEY, now=NOW, basis=BASIS))
    rows = [(str(s[3][0][0]), alert.unescape(str(s[5])), str(s[8]))
            for s in alert.segments("OBX")]
    assert rows[0] == ("RADRAFT-CRIT", "brain: acute subdural haematoma, 9 mm (critical), "
                       "series 3, image 45", "AA")
    assert rows[1] == ("RADRAFT-KEYIMG", "series 3, image 45: "
                       "https://radraft.example.org/studies/1.2.3.4#frame-4", "")
    assert ("19005-8", "1. Acute SDH.", "") in rows  # impressions numbered 1..n
    assert "not the report" in str(alert.segment("NTE")[3])
    assert "RADRAFT-CHECK" not in str(alert)


def test_an_alert_sent_although_unsupported_says_why() -> None:
    basis = AlertBasis(unsupported=("urgent triage is not supported: no finding",
                                    "critical finding 'normal' says nothing"))
    alert = _read(build_ed_alert(REPORT, order=ORDER, patient=PATIENT, settings=SETTINGS,
                                 destination=ED, job_key=KEY, now=NOW, basis=basis))
    notes = [str(s[3]) for s in alert.segments("NTE")]
    assert notes[1].startswith("SENT ALTHOUGH UNSUPPORTED")
    rows = [(str(s[3][0][0]), alert.unescape(str(s[5]))) for s in alert.segments("OBX")]
    assert rows[0][1] == "critical triage, no finding supports it (see the consistency check)"
    check = [text for code, text in rows if code == "RADRAFT-CHECK"]
    assert check[0].startswith("Sent although the AI answer failed")
    assert "critical finding 'normal' says nothing" in check


def test_basis_round_trips_through_json() -> None:
    assert AlertBasis.from_json(BASIS.to_json()) == BASIS
    assert AlertBasis.from_json(None) is None
