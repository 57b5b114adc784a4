"""`bench.latency` mode `killed`: MPPS, two real `radraft worker` processes on RabbitMQ (a
vhost of its own), the worker that took the job SIGKILLed inside its model call.

Intervals: last image -> complete, kill -> re-draft start (another worker claims the job:
the dead one's heartbeat went stale, or the lease its drafting process renewed ran out,
with jobs.heartbeat_s 1 and the default half-hour jobs.time_limit_s), re-draft start ->
outbox, outbox -> ED alert, last image -> ED alert. Times from this machine's clock (the
SQLite database's clock is the same one).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

from bench.latency_peers import AlertPeer, Marks, ModelStandIn, free_port

RABBITMQCTL = "/usr/sbin/rabbitmqctl"
RADRAFT = str(Path(sys.executable).parent / "radraft")


def _vhost() -> str:
    name = f"radraft-bench-{uuid.uuid4().hex[:8]}"
    subprocess.run([RABBITMQCTL, "-q", "add_vhost", name], check=True, timeout=60)
    subprocess.run([RABBITMQCTL, "-q", "set_permissions", "-p", name, "guest", ".*", ".*",
                    ".*"], check=True, timeout=60)
    return name


def _wait(what: str, check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def run_killed(study: Path) -> dict[str, float]:
    from pydicom import dcmread
    from sqlalchemy import select

    from radraft.core.db import Draft, Job, StudyAnnouncement, make_engine, make_sessionmaker
    from radraft.core.db.migrate import upgrade
    from radraft.core.settings import load_settings
    from radraft.dicom_node.node import DicomNode
    from radraft.dicom_node.rules import RulesWatcher
    from radraft.worker.jobs import celery_on_stable
    from tests.mpps_helpers import MppsScu, completed, step_dataset

    marks = Marks()
    peer = AlertPeer(lambda: marks)
    model = ModelStandIn(hold_first_s=30.0)
    vhost = _vhost()
    work = Path(tempfile.mkdtemp(prefix="radraft-bench-latency-killed-"))
    rules = work / "rules.yaml"
    rules.write_text(yaml.safe_dump({"rules": [{
        "name": "ct-urgent-ed", "match": {"modality": ["CT"]}, "action": "draft",
        "profile": "ct-generic", "priority": "urgent", "destinations": ["ed"]}]}))
    config = work / "radraft.yaml"
    config.write_text(yaml.safe_dump({
        "data_dir": str(work / "data"), "database_url": f"sqlite:///{work / 'radraft.db'}",
        "broker_url": f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
        "rules_file": str(rules),
        "dicom": {"port": free_port(), "host": "127.0.0.1", "min_free_bytes": 0},
        "model": {"backend": "openai", "base_urls": [model.url], "timeout_s": 60,
                  "max_retries": 0},
        "profiles": {"ct-generic": {"frames": {"frame_size": 224, "max_frames": 32}}},
        "destinations": {"ed": {"kind": "hl7", "host": "127.0.0.1", "port": peer.port,
                                "role": "ed"}},
        "jobs": {"sweep_interval_s": 0.5, "heartbeat_s": 1},
    }))
    settings = load_settings(config)
    upgrade(settings.database_url)
    sessions = make_sessionmaker(make_engine(settings.database_url))
    workers = {}
    for index in (1, 2):
        proc = subprocess.Popen(
            [RADRAFT, "--config", str(config), "worker", "-c", "1", "--hostname",
             f"w{index}"], stdout=(work / f"worker{index}.log").open("wb"),
            stderr=subprocess.STDOUT, start_new_session=True)
        workers[f"w{index}:{proc.pid}"] = proc
    node = DicomNode(settings, sessions, celery_on_stable(
        settings, sessions, RulesWatcher(rules)), poll_interval_s=0.2)
    files = sorted(study.rglob("*.dcm"))
    first = dcmread(files[0], stop_before_pixels=True)
    node.start()
    try:
        time.sleep(5)  # both workers connected to the broker
        scu = MppsScu(node.port, calling="CT1")
        status, step_uid = scu.create(step_dataset(
            str(first.StudyInstanceUID), accession=str(first.AccessionNumber)))
        assert status == 0
        subprocess.run(["storescu", "-aet", "CT1", "-aec", "RADRAFT", "127.0.0.1",
                        str(node.port), *map(str, files)], check=True, capture_output=True)
        last_image = time.time()
        assert scu.set(step_uid, completed(files)) == 0
        scu.close()
        _wait("the first draft inside its model call", lambda: model.calls, 120)

        def running_worker() -> str | None:
            with sessions() as session:
                job = session.scalars(select(Job)).first()
                return job.worker if job is not None and job.state == "running" else None
        name = _wait("the running job", running_worker, 30)
        os.killpg(workers[name].pid, signal.SIGKILL)
        killed = time.time()
        if not marks.alerted.wait(120):
            raise RuntimeError(f"no ED alert after the kill (see {work})")
        alert = time.time() - (time.monotonic() - marks.alert)
        with sessions() as session:
            job = session.scalars(select(Job)).one()
            draft = session.scalars(select(Draft)).one()
            complete = session.scalars(select(StudyAnnouncement)).one().announced_at
            assert job.started_at is not None and job.attempts == 2
            restarted, outbox = job.started_at.timestamp(), draft.created_at.timestamp()
    finally:
        node.stop()
        for proc in workers.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(30)
        subprocess.run([RABBITMQCTL, "-q", "delete_vhost", vhost], check=False, timeout=60)
        model.stop()
        peer.stop()
    return {"complete": complete.timestamp() - last_image, "kill -> re-draft": restarted - killed,
            "outbox": outbox - restarted, "alert": alert - outbox, "total": alert - last_image}
