"""A real `radraft worker` process (Celery, prefork) delivering the outbox: on RabbitMQ and
PostgreSQL with a PACS that comes up late, and on the embedded SQLite broker where the
wake-ups were lost and the sweeper finishes the work."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers.net import free_port
from helpers.processes import stop_process
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import Delivery, Draft, Job, db_now
from radraft.core.settings import load_settings
from radraft.reporting.phantom import write_phantom_study
from radraft.worker.celery_app import make_celery
from radraft.worker.enqueue import WakeUp, celery_enqueue
from radraft.worker.outbox import OutboxItem, add_deliveries

RADRAFT = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "radraft")



def _storescp(port: int, out: Path) -> subprocess.Popen[bytes]:
    out.mkdir(exist_ok=True)
    return subprocess.Popen(["/usr/bin/storescp", "-aet", "PACS", "-od", str(out), "+uf",
                             str(port)])


def _config(tmp: Path, db_url: str, broker_url: str, pacs_port: int) -> Path:
    data: dict[str, Any] = {
        "data_dir": str(tmp / "data"), "database_url": db_url, "broker_url": broker_url,
        "destinations": {
            "pacs": {"kind": "dicom", "host": "127.0.0.1", "port": pacs_port,
                     "ae_title": "PACS", "timeout_s": 5},
            "folder": {"kind": "folder", "path": str(tmp / "outbox")},
        },
        "delivery": {"base_backoff_s": 0.5, "max_backoff_s": 1.0},
        "jobs": {"sweep_interval_s": 0.5, "redeliver_after_s": 2.0},
    }
    path = tmp / "radraft.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _outbox(
    sessions: sessionmaker[Session], config: Path, tmp: Path, version: str = "v1",
) -> list[int]:
    settings = load_settings(config)
    src = tmp / "src"
    write_phantom_study(src, slices=3, size=32, phases=["portal venous"])
    files = sorted(src.rglob("*.dcm"))
    with sessions() as session:
        now = db_now(session)
        job = Job(study_uid="1.2.3", version=version, profile="ct-generic", state="done",
                  created_at=now)
        session.add(job)
        session.flush()
        draft = Draft(job_id=job.id, study_uid="1.2.3", version=version, profile="ct-generic",
                      report={}, created_at=now)
        items = [OutboxItem("sr", f.read_bytes(), f.stem) for f in files[:1]]
        items.append(OutboxItem("text", b"draft", "T"))
        rows = add_deliveries(session, settings, draft, items, ["pacs", "folder"], now)
        session.commit()
        return [r.id for r in rows]


def _start_worker(config: Path, tmp: Path) -> subprocess.Popen[bytes]:
    log = (tmp / "worker.log").open("wb")
    return subprocess.Popen(
        [RADRAFT, "--config", str(config), "worker", "--queues", "stat,draft,delivery"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )



def _wait_states(sessions: sessionmaker[Session], ids: list[int], tmp: Path,
                 timeout: float = 90) -> dict[int, str]:
    deadline = time.monotonic() + timeout
    states: dict[int, str] = {}
    while time.monotonic() < deadline:
        with sessions() as session:
            states = dict(session.execute(
                select(Delivery.id, Delivery.state).where(Delivery.id.in_(ids))
            ).all())  # type: ignore[arg-type]
        if all(s == "delivered" for s in states.values()):
            return states
        time.sleep(0.3)
    log = (tmp / "worker.log").read_text(errors="replace")[-3000:]
    raise AssertionError(f"not delivered in time: {states}\n{log}")


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_rabbitmq_worker_delivers_after_pacs_comes_up(
    sessions: sessionmaker[Session], db_url: str, tmp_path: Path, vhost: str,
) -> None:
    port = free_port()
    config = _config(tmp_path, db_url, f"amqp://guest:guest@127.0.0.1:5672/{vhost}", port)
    ids = _outbox(sessions, config, tmp_path)
    app = make_celery(load_settings(config))
    enqueue = celery_enqueue(app)
    for row_id in ids:
        enqueue(WakeUp("delivery", row_id, 0))
    worker = _start_worker(config, tmp_path)
    pacs: subprocess.Popen[bytes] | None = None
    try:
        # The PACS is down: the worker backs off (attempts counted, nothing lost).
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with sessions() as session:
                row = session.scalars(select(Delivery).where(
                    Delivery.id.in_(ids), Delivery.kind == "dicom")).one()
                if row.attempts >= 2:
                    break
            time.sleep(0.3)
        assert row.state == "pending" and row.attempts >= 2, row.last_error
        pacs = _storescp(port, tmp_path / "pacs")
        _wait_states(sessions, ids, tmp_path)
        time.sleep(1.5)  # any duplicate send would arrive now
    finally:
        stop_process(worker)
        if pacs is not None:
            pacs.terminate()
            pacs.wait(10)
    assert len(list((tmp_path / "pacs").iterdir())) == 1  # received once
    assert len(list((tmp_path / "outbox" / "1.2.3").iterdir())) == 2


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_embedded_broker_lost_wakeups_finished_by_sweeper(
    sessions: sessionmaker[Session], db_url: str, tmp_path: Path,
) -> None:
    port = free_port()
    pacs = _storescp(port, tmp_path / "pacs")
    config = _config(tmp_path, db_url, "sqla+" + db_url, port)
    ids = _outbox(sessions, config, tmp_path)
    with sessions() as session:
        # As if the worker that fetched their messages had died: nothing on the broker.
        session.execute(update(Delivery).values(next_attempt_at=db_now(session)))
        session.commit()
    worker = _start_worker(config, tmp_path)
    try:
        _wait_states(sessions, ids, tmp_path)
    finally:
        stop_process(worker)
        pacs.terminate()
        pacs.wait(10)
    assert len(list((tmp_path / "pacs").iterdir())) == 1


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_worker_killed_mid_send_is_resent_by_another(
    sessions: sessionmaker[Session], db_url: str, tmp_path: Path, vhost: str,
) -> None:
    """SIGKILL while the PACS holds the C-STORE: the lease expires, the sweeper of a fresh
    worker re-sends the stored bytes. At-least-once: the PACS saw the same UID twice."""
    from pynetdicom import AE, AllStoragePresentationContexts, evt
    from pynetdicom.events import Event

    received: list[str] = []

    def slow_store(event: Event) -> int:
        received.append(str(event.request.AffectedSOPInstanceUID))
        if len(received) == 1:
            time.sleep(4)
        return 0x0000

    ae = AE(ae_title="PACS")
    ae.supported_contexts = AllStoragePresentationContexts
    port = free_port()
    server = ae.start_server(("127.0.0.1", port), block=False,
                             evt_handlers=[(evt.EVT_C_STORE, slow_store)])
    config = _config(tmp_path, db_url, f"amqp://guest:guest@127.0.0.1:5672/{vhost}", port)
    text = config.read_text().replace("timeout_s: 5", "timeout_s: 2")
    config.write_text(text)
    ids = _outbox(sessions, config, tmp_path)
    with sessions() as session:
        [dicom_id] = session.scalars(select(Delivery.id).where(
            Delivery.id.in_(ids), Delivery.kind == "dicom")).all()
    celery_enqueue(make_celery(load_settings(config)))(WakeUp("delivery", dicom_id, 0))
    worker = _start_worker(config, tmp_path)
    second: subprocess.Popen[bytes] | None = None
    try:
        deadline = time.monotonic() + 60
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert received, (tmp_path / "worker.log").read_text(errors="replace")[-2000:]
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
        second = _start_worker(config, tmp_path)
        _wait_states(sessions, [dicom_id], tmp_path, timeout=90)
    finally:
        if second is not None:
            stop_process(second)
        stop_process(worker)
        server.shutdown()
    with sessions() as session:
        row = session.get(Delivery, dicom_id)
        assert row is not None and row.state == "delivered" and row.attempts == 2
    assert len(received) == 2 and received[0] == received[1]
