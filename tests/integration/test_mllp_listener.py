"""The MLLP listener against the real samples, sent with the PyPI `hl7` package's client."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime

import hl7
import pytest
from helpers.data import HL7_DATA
from helpers.net import free_port
from helpers.waiting import wait_for
from mllp_helpers import ack_of, hl7_send, running_listener
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import Hl7Message, LabResult, Order, Patient, PriorReport, Study, Visit
from radraft.core.settings import Hl7Settings, ProfileSettings
from radraft.ehr.apply import OrderChange
from radraft.ehr.context import clinical_context
from radraft.ehr.er7 import split_batch
from radraft.ehr.samples import demo_messages

NOW = datetime(2026, 1, 2, tzinfo=UTC)

# What each sample must get: (MSA-1, ERR-3 code, ERR-2 location) — AA has no ERR.
EXPECTED = {
    "ack_reject_with_err.hl7": ("AR", "200", "MSH^1^9"),  # an ACK is no message for us
    "orm_o01_lab.hl7": ("AE", "101", "OBR^1^18"),  # a lab order without any accession
}


@pytest.fixture
def listener(sessions: sessionmaker[Session]) -> Iterator[tuple[int, list[OrderChange]]]:
    changes: list[OrderChange] = []
    with running_listener(sessions, Hl7Settings(host="127.0.0.1", port=free_port()),
                          changes.append) as port:
        yield port, changes


def _samples() -> list[tuple[str, bytes]]:
    return [(path.name, message) for path in sorted(HL7_DATA.glob("*.hl7"))
            for message in split_batch(path.read_bytes())]


def _theirs(message: bytes) -> hl7.Segment:
    """MSH as the `hl7` package parses it (terminators normalised: it wants CR)."""
    text = message.decode("utf-8", errors="replace").replace("\r\n", "\r").replace("\n", "\r")
    return hl7.parse(text).segment("MSH")


def test_every_sample_is_answered_and_stored_field_by_field(
    listener: tuple[int, list[OrderChange]], sessions: sessionmaker[Session],
) -> None:
    port, changes = listener
    samples = _samples()
    assert len(samples) == 14
    for name, message in samples:
        ack = ack_of(hl7_send(port, message))
        msh = _theirs(message)
        code, err_code, location = EXPECTED.get(name, ("AA", "", ""))
        assert str(ack.segment("MSA")[1]) == code, (name, str(ack))
        assert str(ack.segment("MSA")[2]) == str(msh[10]), name  # MSA-2 echoes MSH-10
        assert str(ack.segment("MSH")[9]).startswith("ACK")
        if code == "AA":
            assert not [s for s in ack if str(s[0]) == "ERR"], name
        else:
            err = ack.segment("ERR")
            assert str(err[2]) == location, name  # ERR-2: segment ^ sequence ^ field
            assert str(err[3][0][0]) == err_code and str(err[3][0][2]) == "HL70357", name
            assert str(err[4]) == "E", name  # ERR-4 severity
        with sessions() as session:
            row = session.scalars(select(Hl7Message).where(
                Hl7Message.control_id == str(msh[10]))).one()
            kind = str(msh[9]).split("^")
            assert (row.raw, row.sha256) == (message, hashlib.sha256(message).hexdigest())
            assert row.sending_application == str(msh[3]).split("^")[0], name
            assert row.sending_facility == str(msh[4]).split("^")[0], name
            assert row.message_type == "^".join(kind[:2]), name
            assert row.version == str(msh[12]), name
            assert row.ack_code == code, name
            assert (row.applied_at is not None) == (code == "AA"), name
            assert (err_code in row.error) if err_code else row.error == "", name
    with sessions() as session:
        count = session.scalar(select(func.count()).select_from(Hl7Message))
        labs = session.scalar(select(func.count()).select_from(LabResult))
    assert count == 14
    # The same messages again: answered as the first time, neither stored nor applied twice.
    for name, message in samples:
        code = EXPECTED.get(name, ("AA", "", ""))[0]
        assert str(ack_of(hl7_send(port, message)).segment("MSA")[1]) == code, name
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Hl7Message)) == count
        assert session.scalar(select(func.count()).select_from(LabResult)) == labs
    wait_for("three order changes", lambda: len(changes) >= 3, timeout=20)
    assert OrderChange("MOF5026", "1.113654.3.13.1026", "active") in changes
    assert OrderChange("AccessionNumber", "1.2.392.200036.9125.0.198811291108.7",
                       "final") in changes


def test_samples_are_applied(
    listener: tuple[int, list[OrderChange]], sessions: sessionmaker[Session],
) -> None:
    port, _ = listener
    for _, message in _samples():
        hl7_send(port, message)
    with sessions() as session:
        mr = session.scalars(select(Order).where(Order.accession == "MOF5026")).one()
        assert (mr.study_uid, mr.procedure_code, mr.requested_procedure_id, mr.priority) == (
            "1.113654.3.13.1026", "P1", "RP1026", "stat")
        assert (mr.placer_order_number, mr.filler_order_number, mr.department) == (
            "A103Z", "B103Z", "IHE-RAD")
        patient = session.get(Patient, mr.patient_ref)
        assert patient is not None and (patient.patient_id, patient.issuer) == ("583295", "ADT1")
        omi = session.scalars(select(Order).where(Order.accession == "AccessionNumber")).one()
        # MSH-18 says 8859/1, the bytes are UTF-8: the en dash survives
        assert "12 \u201335" in omi.reason and omi.requested_procedure_id == "RequestedProcID"
        assert omi.status == "final"  # the radiology ORU^R01 with OBR-25 F
        report = session.scalars(select(PriorReport)).one()
        assert "small mass in the left lung" in report.text and report.result_status == "F"
        ldl = session.scalars(select(LabResult).where(LabResult.code == "JLDL")).one()
        assert (ldl.value, ldl.units, ldl.reference_range, ldl.abnormal_flags) == (
            "134", "mg/dL", "0-100", "H")
        hdl = session.scalars(select(LabResult).where(LabResult.code == "JHDL")).one()
        assert hdl.abnormal_flags == ""  # "" is HL7's explicit null, not two quotes
        glucose = session.scalars(select(LabResult).where(LabResult.code == "GLU")).one()
        assert (glucose.value, glucose.units, glucose.reference_range,
                glucose.abnormal_flags) == ("59", "mg/dL", "65-99", "L")  # OBX-4 left out
        discharged = session.scalars(select(Visit).where(Visit.visit_number == "2008003369"))
        assert discharged.one().discharged_at


def _adt(event: str, new_id: str, old_id: str, control: str) -> bytes:
    sample: bytes = (HL7_DATA / "adt_a47_change_patient_id.hl7").read_bytes()
    return bytes(sample.replace(b"ADT^A47^ADT_A30|1002123", f"ADT^{event}|{control}".encode())
            .replace(b"NEW_PID_1", new_id.encode()).replace(b"OLD_PID_1", old_id.encode()))


def test_a47_renames_and_a40_merges(
    listener: tuple[int, list[OrderChange]], sessions: sessionmaker[Session],
) -> None:
    port, _ = listener
    order = (HL7_DATA / "orm_o01_radiology_mr_wrist.hl7").read_bytes()
    assert str(ack_of(hl7_send(port, order)).segment("MSA")[1]) == "AA"  # patient 583295
    with sessions() as session:
        before = session.scalars(select(Patient).where(Patient.patient_id == "583295")).one()
    # A47: 583295 becomes 583296; the same row, so its order follows
    ack = ack_of(hl7_send(port, _adt("A47", "583296", "583295", "C47")))
    assert str(ack.segment("MSA")[1]) == "AA"
    with sessions() as session:
        renamed = session.get(Patient, before.id)
        assert renamed is not None and renamed.patient_id == "583296"
        assert not session.scalars(select(Patient).where(Patient.patient_id == "583295")).all()
        mr = session.scalars(select(Order).where(Order.accession == "MOF5026")).one()
        assert mr.patient_ref == before.id
    # A40: both known, the old one is merged into the new one
    hl7_send(port, _adt("A01", "OTHER1", "x", "CA01"))
    assert str(ack_of(hl7_send(port, _adt("A40", "OTHER1", "583296", "C40"))).segment(
        "MSA")[1]) == "AA"
    with sessions() as session:
        other = session.scalars(select(Patient).where(Patient.patient_id == "OTHER1")).one()
        merged = session.get(Patient, before.id)
        assert merged is not None and merged.merged_into_id == other.id
    # A47 without MRG-1: AE naming MRG-1
    no_mrg = _adt("A47", "583297", "", "C47B").replace(b"MRG|^^^ADT1", b"MRG|")
    err = ack_of(hl7_send(port, no_mrg)).segment("ERR")
    assert (str(err[2]), str(err[3][0][0])) == ("MRG^1^1", "101")


def test_batch_file_gets_a_batch_of_acks(
    listener: tuple[int, list[OrderChange]], sessions: sessionmaker[Session],
) -> None:
    port, _ = listener
    names = ("adt_a01_epic.hl7", "orm_o01_lab.hl7", "oru_r01_lab_lipid.hl7")
    messages = [split_batch((HL7_DATA / n).read_bytes())[0] for n in names]
    batch = (b"FHS|^~\\&|LAB|C\rBHS|^~\\&|LAB|C|||20260101||||B42\r" + b"".join(messages)
             + b"BTS|3\rFTS|1\r")
    assert split_batch(batch) == messages
    reply = ack_of(hl7_send(port, batch))
    assert [str(s[0]) for s in reply][:2] == ["FHS", "BHS"]
    assert str(reply.segment("BHS")[12]) == "B42"  # BHS-12: the batch it answers
    assert [str(s[1]) for s in reply if str(s[0]) == "MSA"] == ["AA", "AE", "AA"]
    assert str(reply.segment("BTS")[1]) == "3"
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Hl7Message)) == 3


def test_order_lab_and_context(
    listener: tuple[int, list[OrderChange]], sessions: sessionmaker[Session],
) -> None:
    port, changes = listener
    for message in demo_messages(accession="ACC1", patient_id="P1"):
        assert str(ack_of(hl7_send(port, message)).segment("MSA")[1]) == "AA"
    cancel = demo_messages(accession="ACC1", patient_id="P1")[0].replace(
        b"ORC|NW", b"ORC|CA").replace(b"|ORMACC1|", b"|ORMACC1C|")
    assert str(ack_of(hl7_send(port, cancel)).segment("MSA")[1]) == "AA"
    wait_for("the cancellation", lambda: changes and changes[-1] == OrderChange(
        "ACC1", "", "cancelled"), timeout=20)
    with sessions() as session:
        order = session.scalars(select(Order).where(Order.accession == "ACC1")).one()
        assert (order.status, order.priority, order.procedure_code, order.location) == (
            "cancelled", "stat", "CTABD", "ED")
        lab = session.scalars(select(LabResult)).one()
        assert (lab.code, lab.value, lab.units) == ("2160-0", "1.1", "mg/dL")
        session.add(Study(study_uid="1.2.3.4", accession="ACC1", patient_id="P1",
                          first_received_at=NOW, last_received_at=NOW))
        session.commit()
        ctx = clinical_context(session, "1.2.3.4", profile=ProfileSettings(lab_window_days=36500),
                               now=NOW)
        text = ctx.as_text(2000)
        assert "appendicitis" in text and "Creatinine 1.1 mg/dL" in text and "66 years" in text
        assert "DEMO" not in text and "1960" not in text
        session.add(Study(study_uid="1.2.3.5", accession="ACC1", patient_id="OTHER",
                          first_received_at=NOW, last_received_at=NOW))
        session.commit()
        other = clinical_context(session, "1.2.3.5", profile=ProfileSettings(), now=NOW)
        assert other.as_text(2000) == "" and other.flag


def test_lenient_where_hl7apy_refuses(
    listener: tuple[int, list[OrderChange]], sessions: sessionmaker[Session],
) -> None:
    """hl7apy refuses a real ADT^A01 for its CON segment (undefined in v2.4); radraft applies it."""
    from hl7apy.exceptions import InvalidName
    from hl7apy.parser import parse_message

    raw = (HL7_DATA / "adt_a01_rol_con_crlf.hl7").read_bytes()
    with pytest.raises(InvalidName, match="CON"):
        parse_message(raw.decode().replace("\r\n", "\r"), find_groups=False)
    port, _ = listener
    assert str(ack_of(hl7_send(port, raw)).segment("MSA")[1]) == "AA"
    with sessions() as session:
        assert session.scalars(select(Visit)).all()  # applied: patient and visit
