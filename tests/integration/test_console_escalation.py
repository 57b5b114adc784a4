"""ED escalation: an unacknowledged urgent/critical draft raises a second alert once,
through the outbox, after `web.escalate_after_minutes`; an acknowledged one does not."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import hl7
import pydicom
import pytest
from console_helpers import Seeded, login, running_console, seed
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import AuditEvent, Delivery, Draft, db_now
from radraft.worker.console.deps import CSRF_HEADER
from radraft.worker.enqueue import WakeUp
from radraft.worker.escalation import Escalator, escalate_due
from radraft.worker.outbox import deliver


@pytest.fixture
def seeded(sessions: sessionmaker[Session], tmp_path: Path, db_url: str) -> Seeded:
    return seed(sessions, tmp_path, db_url)


def _age(sessions: sessionmaker[Session], draft_id: int, minutes: float) -> None:
    with sessions() as session:
        session.execute(update(Draft).where(Draft.id == draft_id).values(
            created_at=db_now(session) - timedelta(minutes=minutes)))
        session.commit()


def _msh10(payload: bytes) -> str:
    return payload.decode().split("\r")[0].split("|")[9]


def test_unacknowledged_alert_escalates_once_through_the_outbox(
    seeded: Seeded, sessions: sessionmaker[Session], tmp_path: Path,
) -> None:
    woken: list[WakeUp] = []
    escalator = Escalator(seeded.settings, sessions, woken.append)
    assert escalator.run_once() == 0  # drafted just now: not due (escalate after 1 minute)
    _age(sessions, seeded.draft_id, 2)
    assert escalator.run_once() == 2
    with sessions() as session:
        rows = {r.destination: r for r in session.scalars(select(Delivery).where(
            Delivery.payload_kind == "escalation"))}
        firsts = {r.destination: r for r in session.scalars(select(Delivery).where(
            Delivery.payload_kind == "alert"))}
        assert set(rows) == set(firsts) == {"ed", "folder"}
        for name, row in rows.items():
            assert b"ESCALATION: not acknowledged within 1 minutes" in row.payload
            assert row.message_id != firsts[name].message_id
            assert _msh10(row.payload) != _msh10(firsts[name].payload)
            assert row.state == "pending"
        assert {w.row_id for w in woken} == {r.id for r in rows.values()}
        draft = session.get(Draft, seeded.draft_id)
        assert draft is not None and draft.escalated_at is not None
        [event] = session.scalars(select(AuditEvent).where(
            AuditEvent.kind == "alert.escalated")).all()
        assert event.details["destinations"] == ["ed", "folder"]
        folder_row = rows["folder"].id
    with sessions() as session:
        assert escalate_due(session, seeded.settings) == []  # once
    assert deliver(sessions, seeded.settings, folder_row, 0) == "delivered"
    [written] = (tmp_path / "outbox" / seeded.drafted_uid).glob("escalation-*.hl7")
    assert b"ESCALATION" in written.read_bytes()
    # OBR-7: the exam's time from the study's header (not the escalation's).
    header = pydicom.dcmread(next((tmp_path / "drafted").rglob("*.dcm")),
                             stop_before_pixels=True)
    obr = hl7.parse(written.read_bytes().decode("utf-8"))["OBR"][0]
    assert str(obr[7]).startswith(str(header.StudyDate) + str(header.StudyTime)[:4])
    with running_console(seeded.settings, sessions) as client:
        login(client, "vic")
        [row] = client.get("/api/ed").json()
        assert row["escalated_at"] and row["overdue"]
        assert "folder escalation: delivered" in row["alert_states"]
        assert "escalated" in client.get("/ed").text


def test_acknowledged_alert_does_not_escalate(
    seeded: Seeded, sessions: sessionmaker[Session],
) -> None:
    with running_console(seeded.settings, sessions) as client:
        csrf = login(client, "ed1")
        assert client.post(f"/api/ed/{seeded.draft_id}/ack",
                           headers={CSRF_HEADER: csrf}).status_code == 200
    _age(sessions, seeded.draft_id, 30)
    with sessions() as session:
        assert escalate_due(session, seeded.settings) == []
        assert not session.scalars(select(Delivery).where(
            Delivery.payload_kind == "escalation")).all()
        draft = session.get(Draft, seeded.draft_id)
        assert draft is not None and draft.escalated_at is None


def test_a_draft_that_cannot_be_built_does_not_stop_the_loop(
    seeded: Seeded, sessions: sessionmaker[Session],
) -> None:
    _age(sessions, seeded.draft_id, 5)
    with sessions() as session:
        session.execute(update(Draft).where(Draft.id == seeded.draft_id).values(
            report={"not": "a report"}))
        session.commit()
    with sessions() as session:
        assert escalate_due(session, seeded.settings) == []
        draft = session.get(Draft, seeded.draft_id)
        assert draft is not None and draft.escalated_at is not None  # not retried every pass
        [failed] = session.scalars(select(AuditEvent).where(
            AuditEvent.kind == "alert.escalation_failed")).all()
        assert failed.details["error"] == "ValidationError"
