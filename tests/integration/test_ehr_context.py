"""ehr.context: the profile's labs within its window, prior impressions, the budget, the audit
form, and identity (accession + Study Instance UID, PID-3 + issuer) (SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import Study
from radraft.core.settings import Settings
from radraft.dicom_node.rules import facts_for_study
from radraft.ehr.context import clinical_context
from radraft.ehr.samples import demo_messages
from radraft.ehr.writer import GroupWriter

NOW = datetime(2026, 1, 2, 12, tzinfo=UTC)
ORDER, LAB = demo_messages(accession="ACC-C", patient_id="PC")


def _lab(control: str, obx: str, patient: str = "PC") -> bytes:
    return (LAB.replace(b"|LABACC-C|", f"|{control}|".encode())
            .replace(b"PID|1||PC^^^HOSP", f"PID|1||{patient}^^^HOSP".encode())
            .split(b"OBX|")[0] + f"OBX|1|{obx}\r".encode())


PRIOR = (b"MSH|^~\\&|RIS|HOSP|RADRAFT|HOSP|20251201||ORU^R01|PRIOR1|P|2.5.1\r"
         b"PID|1||PC^^^HOSP\rOBR|1||F-OLD|CTABD^CT abdomen|||20251201|||||||||||OLD-1"
         b"|||||||F\rOBX|1|TX|^Report||Findings: normal appendix.||||||F\r"
         b"OBX|2|TX|^Report||IMPRESSION: No acute abdominal process.||||||F\r")


@pytest.fixture
def stored(sessions: sessionmaker[Session]) -> Iterator[sessionmaker[Session]]:
    writer = GroupWriter(sessions, processing_ids=frozenset({"P"}))
    writer.start()
    messages = [
        ORDER,
        _lab("L1", "NM|2160-0^Creatinine^LN||1.4|mg/dL|0.6-1.2|H|||F|||20260101090000"),
        _lab("L2", "NM|3040-3^Lipase^LN||250|U/L|10-60|HH|||F|||20260101091000"),
        _lab("L3", "NM|10839-9^Troponin I^LN||0.01|ng/mL|<0.04|N|||F|||20260101092000"),
        _lab("L4", "NM|2160-0^Creatinine^LN||0.9|mg/dL|0.6-1.2|N|||F|||20250101090000"),
        _lab("L5", "NM|33914-3^eGFR^LN||48|mL/min|>60|L|||F|||20260101093000", "PC-OLD"),
        b"MSH|^~\\&|ADT|HOSP|RADRAFT|HOSP|20260101||ADT^A40|M1|P|2.5.1\r"
        b"PID|1||PC^^^HOSP\rMRG|PC-OLD^^^HOSP\r",
        PRIOR,
    ]
    for message in messages:
        assert b"MSA|AA" in writer.submit(message, "test").result(10), message[:60]
    writer.stop()
    yield sessions


def _study(session: Session, uid: str, *, accession: str = "ACC-C", patient: str = "PC",
           issuer: str = "") -> None:
    session.add(Study(study_uid=uid, accession=accession, patient_id=patient,
                      issuer_of_patient_id=issuer, first_received_at=NOW,
                      last_received_at=NOW))
    session.commit()


def test_profile_labs_window_priors_budget_and_audit(stored: sessionmaker[Session]) -> None:
    profile = Settings().profiles["ct-abdomen-multiphase"]  # renal function + lipase, 30 days
    with stored() as session:
        _study(session, "1.2.3.10", issuer="HOSP")
        ctx = clinical_context(session, "1.2.3.10", profile=profile, now=NOW)
    assert ctx.flag == ""
    assert ctx.indication.endswith("suspected appendicitis")
    assert (ctx.priority, ctx.source, ctx.department) == ("stat", "order ACC-C", "ED")
    text = ctx.as_text(2000)
    assert "Lipase 250 U/L (ref 10-60) [HH]" in text
    assert "Creatinine 1.4 mg/dL (ref 0.6-1.2) [H]" in text
    assert "eGFR 48" in text  # from the patient merged into this one (A40)
    assert "Troponin" not in text  # not in this profile's list
    assert "0.9" not in text  # a year old: outside lab_window_days
    assert "Prior impression: No acute abdominal process." in text
    assert "DEMO" not in text and "1960" not in text  # no name, no birth date
    short = ctx.as_text(90)
    assert len(short) <= 90 and short.startswith("Indication:")
    assert all(line in text.splitlines() for line in short.splitlines())  # whole lines only
    audit = ctx.as_audit()
    assert {lab["code"] for lab in audit["labs"]} == {"2160-0", "3040-3", "33914-3"}
    assert audit["priors"] == [{"accession": "OLD-1", "status": "F",
                                "observed_at": "2025-12-01T00:00:00+00:00"}]
    chest = Settings().profiles["ct-chest"]
    with stored() as session:
        assert "Troponin I 0.01" in clinical_context(
            session, "1.2.3.10", profile=chest, now=NOW).as_text(2000)


@pytest.mark.parametrize(("study", "why"), [
    ({"patient": "SOMEONE-ELSE"}, "patient identity"),
    ({"issuer": "OTHER-HOSPITAL"}, "patient identity"),
])
def test_identity_mismatch_attaches_nothing_and_flags(
    stored: sessionmaker[Session], study: dict[str, str], why: str,
) -> None:
    with stored() as session:
        _study(session, "1.2.3.20", **study)
        ctx = clinical_context(session, "1.2.3.20", profile=Settings().profiles["ct-generic"],
                               now=NOW)
        assert ctx.as_text(2000) == "" and why in ctx.flag
        flagged = session.get(Study, session.query(Study.id).filter_by(
            study_uid="1.2.3.20").scalar())
        assert flagged is not None and why in flagged.admin_flag


def test_order_study_uid_must_agree(sessions: sessionmaker[Session]) -> None:
    writer = GroupWriter(sessions, processing_ids=frozenset({"P"}))
    writer.start()
    order = ORDER.replace(b"PV1|1|E|ED^01", b"PV1|1|E|ED^01\rZDS|1.2.3.99^100^Application^DICOM")
    assert b"MSA|AA" in writer.submit(order, "test").result(10)
    writer.stop()
    with sessions() as session:
        _study(session, "1.2.3.30")  # same accession, another study
        ctx = clinical_context(session, "1.2.3.30", profile=Settings().profiles["ct-generic"],
                               now=NOW)
        assert ctx.as_text(2000) == "" and "Study Instance UID" in ctx.flag
        _study(session, "1.2.3.99")  # the study the order names
        good = clinical_context(session, "1.2.3.99", profile=Settings().profiles["ct-generic"],
                                now=NOW)
        assert good.flag == "" and "appendicitis" in good.as_text(2000)


def test_rules_see_only_an_order_whose_identity_agrees(stored: sessionmaker[Session]) -> None:
    """Routing facts follow the same identity rule: a disagreeing order is no order."""
    with stored() as session:
        _study(session, "1.2.3.40", issuer="HOSP")
        _study(session, "1.2.3.41", patient="SOMEONE-ELSE")
        good = facts_for_study(session, "1.2.3.40", now=NOW)
        other = facts_for_study(session, "1.2.3.41", now=NOW)
    assert (good.order_location, good.order_priority) == ("ED", "stat")
    assert other.order_location is None and other.order_priority is None


def test_rules_ignore_an_order_for_another_study_uid(sessions: sessionmaker[Session]) -> None:
    writer = GroupWriter(sessions, processing_ids=frozenset({"P"}))
    writer.start()
    order = ORDER.replace(b"PV1|1|E|ED^01", b"PV1|1|E|ED^01\rZDS|1.2.3.99^100^Application^DICOM")
    assert b"MSA|AA" in writer.submit(order, "test").result(10)
    writer.stop()
    with sessions() as session:
        _study(session, "1.2.3.50")
        _study(session, "1.2.3.99")
        assert facts_for_study(session, "1.2.3.50", now=NOW).order_location is None
        assert facts_for_study(session, "1.2.3.99", now=NOW).order_location == "ED"


def test_an_order_for_a_study_of_another_patient_flags_it_on_arrival(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        _study(session, "1.2.3.60", patient="SOMEONE-ELSE")  # received before the order
        _study(session, "1.2.3.61", accession="ACC-OTHER")
    writer = GroupWriter(sessions, processing_ids=frozenset({"P"}))
    writer.start()
    assert b"MSA|AA" in writer.submit(ORDER, "test").result(10)
    writer.stop()
    with sessions() as session:
        flags = dict(session.query(Study.study_uid, Study.admin_flag).all())
    assert "patient identity" in flags["1.2.3.60"] and flags["1.2.3.61"] == ""
