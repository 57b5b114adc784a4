"""A `radraft worker` SIGKILLed while the model server (the real vLLM, or radraft's own
OpenAI-compatible server) is answering its draft: another worker finishes the job within
seconds (the dead worker's heartbeat goes stale; its lease, jobs.time_limit_s, is half an
hour and never runs out in the test); exactly one Draft row for the version, and each
output reaches the counting PACS (dcmtk storescp keeping every copy) and the MLLP peer
exactly once."""

from __future__ import annotations

import http.server
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from helpers.net import free_port
from helpers.waiting import wait_for
from helpers.worker import index_folder, stable_of
from mllp_peer import MllpPeer
from pydicom import dcmread
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import AuditEvent, Delivery, Draft, Job
from radraft.core.settings import load_settings
from radraft.core.types import Priority
from radraft.dicom_node.rules import RuleOutcome
from radraft.reporting.phantom import write_phantom_study
from radraft.worker.celery_app import make_celery
from radraft.worker.enqueue import celery_enqueue
from radraft.worker.jobs import create_jobs

pytestmark = [pytest.mark.slow]

RADRAFT = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "radraft")
MODEL_DELAY_S = 5.0


class SlowModelProxy:
    """Forwards to the model server, holding each chat completion MODEL_DELAY_S first, so a
    draft is reliably in the model call when the test kills its worker."""

    def __init__(self, upstream: str) -> None:
        self.chats = 0
        proxy = self
        root = upstream.removesuffix("/v1")

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path.endswith("/chat/completions"):
                    proxy.chats += 1
                    time.sleep(MODEL_DELAY_S)
                try:
                    answer = httpx.post(root + self.path, content=body, timeout=120,
                                        headers={"Content-Type": "application/json"})
                    self.send_response(answer.status_code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer.content)))
                    self.end_headers()
                    self.wfile.write(answer.content)
                except (httpx.HTTPError, OSError):
                    pass  # the caller was killed: nobody reads the answer

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()



def _worker(config: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([RADRAFT, "--config", str(config), "worker", "--concurrency", "1"],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)



@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("model_server", [
    pytest.param("vllm_server", marks=pytest.mark.vllm), "model_serve"])
def test_worker_killed_mid_draft_drafts_once_and_delivers_once(
    sessions: sessionmaker[Session], db_url: str, tmp_path: Path, vhost: str,
    model_server: str, request: pytest.FixtureRequest,
) -> None:
    proxy = SlowModelProxy(request.getfixturevalue(model_server).base_url)
    ris = MllpPeer()
    pacs_port, received = free_port(), tmp_path / "pacs"
    received.mkdir()
    pacs = subprocess.Popen(["/usr/bin/storescp", "-aet", "PACS", "-od", str(received), "+uf",
                             str(pacs_port)], stdout=(tmp_path / "pacs.log").open("wb"),
                            stderr=subprocess.STDOUT)
    study_dir = tmp_path / "study"
    write_phantom_study(study_dir, slices=8, size=64, phases=["portal venous"],
                        accession="ACC-KILL-1")
    data: dict[str, Any] = {
        "data_dir": str(tmp_path / "data"), "database_url": db_url,
        "broker_url": f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
        "model": {"backend": "openai", "base_urls": [proxy.url], "timeout_s": 60},
        "profiles": {"ct-generic": {"frames": {"frame_size": 224, "max_frames": 16}}},
        "destinations": {
            "pacs": {"kind": "dicom", "host": "127.0.0.1", "port": pacs_port,
                     "ae_title": "PACS", "timeout_s": 20},
            "ris": {"kind": "hl7", "host": "127.0.0.1", "port": ris.port, "role": "ris"},
        },
        # The lease (the task's hard time limit) is the default half hour: only the dead
        # worker's stale heartbeat (3 missed 1 s beats) can free the job within the test.
        "jobs": {"sweep_interval_s": 1, "time_limit_s": 1800, "redeliver_after_s": 30,
                 "heartbeat_s": 1},
        "delivery": {"base_backoff_s": 0.5, "max_backoff_s": 2},
    }
    config = tmp_path / "radraft.yaml"
    config.write_text(yaml.safe_dump(data))
    settings = load_settings(config)
    first = _worker(config, tmp_path / "w1.log")
    second = None
    try:
        with sessions() as session:
            study = index_folder(session, study_dir)
            outcome = RuleOutcome("all", "draft", profile="ct-generic", priority=Priority.URGENT,
                                  destinations=("pacs", "ris"))
            wakeups = create_jobs(session, settings, stable_of(study), [outcome])
            session.commit()
        enqueue = celery_enqueue(make_celery(settings))
        for wake in wakeups:
            enqueue(wake)
        wait_for("the first worker inside the model call", lambda: proxy.chats >= 1, tmp_path,
                 interval=0.2)
        time.sleep(1)
        with sessions() as session:
            job = session.scalars(select(Job)).one()
            assert job.state == "running" and session.scalars(select(Draft)).first() is None
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
        second = _worker(config, tmp_path / "w2.log")

        def delivered() -> bool:
            with sessions() as session:
                states = list(session.scalars(select(Delivery.state)))
            return bool(states) and set(states) == {"delivered"}
        wait_for("the job drafted again and delivered", delivered, tmp_path, timeout=240,
                 interval=0.2)
        time.sleep(3)  # a duplicate send would arrive now
    finally:
        for proc in (second, first):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(30)
        pacs.terminate()
        pacs.wait(10)
        proxy.stop()
        ris.stop()
    with sessions() as session:
        job = session.scalars(select(Job)).one()
        drafts = session.scalars(select(Draft)).all()
        rows = session.scalars(select(Delivery)).all()
    assert job.state == "done" and job.attempts == 2
    with sessions() as session:
        requeued = session.scalars(select(AuditEvent).where(
            AuditEvent.kind == "job.requeued")).one()
    # Taken back because the dead worker stopped beating, or because the lease its drafting
    # process renewed (heartbeat_s x heartbeat_misses ahead) ran out: never the half hour.
    assert requeued.details["reason"] in ("worker heartbeat stale", "lease expired")
    assert len(drafts) == 1
    dicom_rows = [r for r in rows if r.destination == "pacs"]
    copies = [str(dcmread(p, stop_before_pixels=True).SOPInstanceUID)
              for p in received.iterdir() if p.is_file()]
    # Every DICOM output once (storescp +uf keeps each received copy under its own name).
    assert sorted(copies) == sorted(r.message_id for r in dicom_rows)
    assert len(copies) == len(set(copies)) == 3  # SR, TID 1500, KOS
    results = [m for m in ris.received.messages() if str(m["MSH"][0][9]).startswith("ORU")]
    assert len(results) == 1
    # The killed attempt and the one that drafted, plus the answer check's re-ask when the
    # tiny model's answer was inconsistent (consistency.max_reasks, once by default).
    assert proxy.chats == 2 + drafts[0].reasks
