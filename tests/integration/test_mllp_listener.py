"""The MLLP listener against the real samples, sent with the PyPI `hl7` package's client."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import hl7
import pytest
from conftest import HL7_DATA, free_port
from hl7.client import MLLPClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import Hl7Message, LabResult, Order, Patient, Study
from radraft.core.settings import Hl7Settings, ProfileSettings, Settings
from radraft.ehr.apply import OrderChange
from radraft.ehr.context import clinical_context
from radraft.ehr.er7 import split_batch
from radraft.ehr.listener import run_listener
from radraft.ehr.samples import demo_messages

NOW = datetime(2026, 1, 2, tzinfo=UTC)


@pytest.fixture
def listener(sessions: sessionmaker[Session]) -> Iterator[tuple[int, list[OrderChange]]]:
    port = free_port()
    settings = Settings(hl7=Hl7Settings(host="127.0.0.1", port=port))
    changes: list[OrderChange] = []
    loop = asyncio.new_event_loop()
    ready = asyncio.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        task = loop.create_task(run_listener(settings, sessions, on_order_change=changes.append,
                                             ready=ready))
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(task)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    while not ready.is_set():
        threading.Event().wait(0.05)
    yield port, changes
    for task in asyncio.all_tasks(loop):
        loop.call_soon_threadsafe(task.cancel)
    thread.join(10)


def _send(port: int, message: bytes) -> hl7.Message:
    with MLLPClient("127.0.0.1", port) as client:
        reply: bytes = client.send_message(message)
    assert reply.startswith(b"\x0b") and reply.endswith(b"\x1c\r"), reply
    return hl7.parse(reply[1:-2].decode())


def test_every_sample_is_acknowledged_and_stored(
    listener: tuple[int, list[OrderChange]], sessions: sessionmaker[Session],
) -> None:
    port, changes = listener
    sent: list[tuple[str, bytes]] = []
    for path in sorted(HL7_DATA.glob("*.hl7")):
        for message in split_batch(path.read_bytes()):
            ack = _send(port, message)
            code = str(ack.segment("MSA")[1])
            assert code in ("AA", "AE", "AR"), path.name
            if code != "AA":
                assert str(ack.segment("ERR")[3]), path.name  # a specific table-0357 code
            sent.append((str(ack.segment("MSA")[2]), message))
    assert sent
    with sessions() as session:
        for control, _message in sent:
            row = session.scalars(select(Hl7Message).where(
                Hl7Message.control_id == control)).first()
            assert row is not None and row.raw in {m for c, m in sent if c == control}
        count = session.scalar(select(func.count()).select_from(Hl7Message))
        assert session.scalar(select(func.count()).select_from(Patient))
    # the same messages again: acknowledged, not stored or applied twice
    for _, message in sent[:3]:
        assert str(_send(port, message).segment("MSA")[1]) in ("AA", "AE")
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Hl7Message)) == count
    assert any(isinstance(change, OrderChange) for change in changes)


def test_garbage_gets_ar_and_the_listener_survives(
    listener: tuple[int, list[OrderChange]],
) -> None:
    port, _ = listener
    ack = _send(port, b"this is not HL7")
    assert str(ack.segment("MSA")[1]) == "AR"
    assert str(ack.segment("ERR")[3][0][0]) == "100"
    order, _lab = demo_messages(accession="ACC9", patient_id="P9")
    assert str(_send(port, order).segment("MSA")[1]) == "AA"


def test_order_lab_and_context(
    listener: tuple[int, list[OrderChange]], sessions: sessionmaker[Session],
) -> None:
    port, changes = listener
    for message in demo_messages(accession="ACC1", patient_id="P1"):
        assert str(_send(port, message).segment("MSA")[1]) == "AA"
    cancel = demo_messages(accession="ACC1", patient_id="P1")[0].replace(
        b"ORC|NW", b"ORC|CA").replace(b"|ORMACC1|", b"|ORMACC1C|")
    assert str(_send(port, cancel).segment("MSA")[1]) == "AA"
    assert changes[-1] == OrderChange("ACC1", "", "cancelled")
    with sessions() as session:
        order = session.scalars(select(Order).where(Order.accession == "ACC1")).one()
        assert (order.status, order.priority, order.procedure_code) == (
            "cancelled", "stat", "CTABD")
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
        other = clinical_context(session, "1.2.3.5", profile=ProfileSettings(),
                                 now=NOW)
        assert other.as_text(2000) == "" and other.flag
