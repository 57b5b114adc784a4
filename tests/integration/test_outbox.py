"""Outbox delivery: folder, C-STORE to a counting dcmtk PACS, transient back-off, permanent
stop, duplicate wake-ups, cancelled orders (SQLite and PostgreSQL)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

import pytest
from helpers.net import free_port, wait_port
from helpers.worker import worker_settings
from pydicom import dcmread
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.events import Event
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import AuditEvent, Delivery, Draft, Job, Order, db_now
from radraft.core.settings import Settings
from radraft.reporting.phantom import write_phantom_study
from radraft.worker.outbox import OutboxItem, add_deliveries, deliver


@pytest.fixture(scope="module")
def sop_bytes(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, str]:
    out = tmp_path_factory.mktemp("payload")
    study = write_phantom_study(out, slices=2, size=32, phases=["portal venous"])
    path = sorted(out.rglob("*.dcm"))[0]
    return path.read_bytes(), study.study_uid


@pytest.fixture
def counting_pacs(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    port, out = free_port(), tmp_path / "pacs"
    out.mkdir()
    proc = subprocess.Popen(["/usr/bin/storescp", "-aet", "PACS", "-od", str(out), "+uf",
                             str(port)])
    try:
        wait_port(port)
        yield port, out
    finally:
        proc.terminate()
        proc.wait(10)


def _settings(tmp: Path, db_url: str, pacs_port: int) -> Settings:
    return worker_settings(tmp, db_url, destinations={
        "folder": {"kind": "folder", "path": str(tmp / "outbox")},
        "pacs": {"kind": "dicom", "host": "127.0.0.1", "port": pacs_port, "ae_title": "PACS",
                 "timeout_s": 5},
    }, delivery={"base_backoff_s": 10, "max_backoff_s": 60})


def _draft(session: Session, settings: Settings, study_uid: str, payload: bytes,
           destinations: list[str]) -> list[Delivery]:
    now = db_now(session)
    job = Job(study_uid=study_uid, version="v1", profile="ct-generic", state="done",
              created_at=now)
    session.add(job)
    session.flush()
    draft = Draft(job_id=job.id, study_uid=study_uid, version="v1", profile="ct-generic",
                  report={}, created_at=now)
    items = [OutboxItem("sr", payload, "1.2.3"), OutboxItem("text", b"draft text", "T1")]
    rows = add_deliveries(session, settings, draft, items, destinations, now)
    session.commit()
    return rows


def test_folder_and_dicom_delivered_once_each(
    sessions: sessionmaker[Session], tmp_path: Path, db_url: str,
    counting_pacs: tuple[int, Path], sop_bytes: tuple[bytes, str],
) -> None:
    port, received = counting_pacs
    settings = _settings(tmp_path, db_url, port)
    payload, study_uid = sop_bytes
    with sessions() as session:
        rows = _draft(session, settings, study_uid, payload, ["folder", "pacs"])
    # dicom gets only the DICOM object; the folder gets everything.
    assert sorted((r.destination, r.payload_kind) for r in rows) == [
        ("folder", "sr"), ("folder", "text"), ("pacs", "sr")]
    for row in rows:
        assert deliver(sessions, settings, row.id, 0) == "delivered"
        assert deliver(sessions, settings, row.id, 0) == "not-due"  # duplicate wake-up
    assert len(list(received.iterdir())) == 1
    written = tmp_path / "outbox" / study_uid
    assert (written / "sr-1.2.3.dcm").read_bytes() == payload
    assert (written / "text-T1.txt").read_text() == "draft text"


def test_pacs_down_then_up_resends_stored_bytes(
    sessions: sessionmaker[Session], tmp_path: Path, db_url: str, sop_bytes: tuple[bytes, str],
) -> None:
    port = free_port()
    settings = _settings(tmp_path, db_url, port)
    payload, study_uid = sop_bytes
    with sessions() as session:
        [row] = _draft(session, settings, study_uid, payload, ["pacs"])
        before = db_now(session)
    assert deliver(sessions, settings, row.id, 0) == "pending"
    with sessions() as session:
        pending = session.get(Delivery, row.id)
        assert pending is not None and pending.attempts == 1
        assert pending.next_attempt_at is not None
        assert (pending.next_attempt_at - before).total_seconds() >= 5  # backed off
        assert "127.0.0.1" in pending.last_error
    out = tmp_path / "pacs-later"
    out.mkdir()
    proc = subprocess.Popen(["/usr/bin/storescp", "-aet", "PACS", "-od", str(out), "+uf",
                             str(port)])
    try:
        wait_port(port)
        assert deliver(sessions, settings, row.id, 1) == "delivered"
    finally:
        proc.terminate()
        proc.wait(10)
    [stored] = list(out.iterdir())
    # Re-sent as built: the PACS holds the stored object, same SOP Instance UID.
    sent = dcmread(BytesIO(payload))
    assert dcmread(stored).SOPInstanceUID == sent.SOPInstanceUID


def test_permanent_refusal_stops_and_is_visible(
    sessions: sessionmaker[Session], tmp_path: Path, db_url: str, sop_bytes: tuple[bytes, str],
) -> None:
    ae = AE(ae_title="PACS")
    ae.supported_contexts = AllStoragePresentationContexts
    calls: list[int] = []

    def refuse(_event: Event) -> int:
        calls.append(1)
        return 0xA900

    port = free_port()
    server = ae.start_server(("127.0.0.1", port), block=False,
                             evt_handlers=[(evt.EVT_C_STORE, refuse)])
    try:
        settings = _settings(tmp_path, db_url, port)
        payload, study_uid = sop_bytes
        with sessions() as session:
            [row] = _draft(session, settings, study_uid, payload, ["pacs"])
        assert deliver(sessions, settings, row.id, 0) == "failed"
        assert deliver(sessions, settings, row.id, 1) == "not-due"
    finally:
        server.shutdown()
    assert calls == [1]
    with sessions() as session:
        failed = session.get(Delivery, row.id)
        assert failed is not None and failed.state == "failed"
        assert "0xA900" in failed.last_error and failed.next_attempt_at is None
        events = session.scalars(select(AuditEvent.kind)).all()
        assert "delivery.failed" in events


def test_cancelled_order_drops_pending_delivery(
    sessions: sessionmaker[Session], tmp_path: Path, db_url: str, sop_bytes: tuple[bytes, str],
) -> None:
    settings = _settings(tmp_path, db_url, free_port())
    payload, study_uid = sop_bytes
    with sessions() as session:
        [row] = _draft(session, settings, study_uid, payload, ["pacs"])
        now = datetime.now(UTC)
        session.add(Order(accession="A1", study_uid=study_uid, status="final",
                          received_at=now, updated_at=now))
        session.commit()
    assert deliver(sessions, settings, row.id, 0) == "cancelled"
