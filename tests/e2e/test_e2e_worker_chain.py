"""The chain's plumbing with real processes: dcmtk storescu -> `radraft serve` (node,
stability, rules) -> Job + wake-up on the broker -> `radraft worker` takes it. Embedded
defaults (SQLite database and broker) as `radraft demo` runs them, and production
(PostgreSQL, RabbitMQ). Sending the same instances again drafts nothing new."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers.net import free_port, wait_port
from helpers.processes import stop_process
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import Job, RuleDecision
from radraft.reporting.phantom import write_phantom_study

RADRAFT = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "radraft")
RULES = """rules:
  - name: all-ct
    match: {modality: [CT]}
    action: draft
    profile: ct-generic
    priority: urgent
    destinations: [outbox]
"""



def _spawn(config: Path, args: list[str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([RADRAFT, "--config", str(config), *args],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)



def _send(folder: Path, port: int) -> None:
    run = subprocess.run(["/usr/bin/storescu", "+sd", "+r", "-aec", "RADRAFT", "127.0.0.1",
                          str(port), str(folder)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


def _wait_worker_took(sessions: sessionmaker[Session], tmp: Path, timeout: float = 120) -> Job:
    """The worker consumed the wake-up: the job ran, or says why it could not draft."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sessions() as session:
            job = session.scalars(select(Job)).first()
            if job is not None and (job.state in ("running", "done", "failed")
                                    or job.last_error.startswith("cannot draft")):
                return job
        time.sleep(0.3)
    logs = "\n".join(p.read_text(errors="replace")[-1500:] for p in tmp.glob("*.log"))
    raise AssertionError(f"no job taken by the worker in {timeout} s\n{logs}")


def _run_chain(tmp: Path, sessions: sessionmaker[Session], db_url: str, broker: str) -> None:
    port = free_port()
    (tmp / "rules.yaml").write_text(RULES)
    data: dict[str, Any] = {
        "data_dir": str(tmp / "data"), "database_url": db_url, "broker_url": broker,
        "rules_file": "rules.yaml",
        "dicom": {"host": "127.0.0.1", "port": port, "stable_seconds": 1},
        "hl7": {"host": "127.0.0.1", "port": free_port()},  # serve starts the HL7 listener too
        "web": {"host": "127.0.0.1", "port": free_port()},  # and the console
        "destinations": {"outbox": {"kind": "folder", "path": str(tmp / "outbox")}},
        "jobs": {"sweep_interval_s": 1, "redeliver_after_s": 60},
    }
    config = tmp / "radraft.yaml"
    config.write_text(yaml.safe_dump(data))
    study = tmp / "study"
    write_phantom_study(study, slices=3, size=32, phases=["portal venous"])
    serve = _spawn(config, ["serve"], tmp / "serve.log")
    worker = _spawn(config, ["worker", "--pool", "solo"], tmp / "worker.log")
    try:
        wait_port(port)
        _send(study, port)
        job = _wait_worker_took(sessions, tmp)
        _send(study, port)  # the same instances again: same version, no new job
        time.sleep(3)
    finally:
        stop_process(worker)
        stop_process(serve)
    with sessions() as session:
        jobs = session.scalars(select(Job)).all()
        decisions = session.scalars(select(RuleDecision)).all()
    assert len(jobs) == 1 and jobs[0].priority == "urgent" and jobs[0].rule_name == "all-ct"
    assert [d.action for d in decisions] == ["draft"]
    assert job.study_uid == jobs[0].study_uid


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_chain_embedded(sessions: sessionmaker[Session], db_url: str, tmp_path: Path) -> None:
    _run_chain(tmp_path, sessions, db_url, "sqla+" + db_url)


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_chain_production(
    sessions: sessionmaker[Session], db_url: str, tmp_path: Path, vhost: str,
) -> None:
    _run_chain(tmp_path, sessions, db_url, f"amqp://guest:guest@127.0.0.1:5672/{vhost}")
