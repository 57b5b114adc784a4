"""`radraft demo`: the whole chain on embedded defaults, with a synthetic study.

Node and worker run as real processes (`radraft serve`, `radraft worker`); the study goes in
over DICOM, the HL7 order and labs over MLLP, the outputs come out in a folder destination.
Every stage is timed; the demo exits 0 only if every stage worked.
"""

from __future__ import annotations

import importlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydicom import dcmread
from pynetdicom import AE
from sqlalchemy import select

from radraft.core.db import Delivery, Draft, Job, make_engine, make_sessionmaker
from radraft.core.errors import RadraftError
from radraft.core.settings import load_settings
from radraft.reporting.phantom import write_phantom_study

Echo = Callable[[str], None]

RULES = """rules:
  - name: demo-archive
    match: {calling_aet: [DEMO_ARCHIVE]}
    action: ignore
  - name: demo-ct
    match: {modality: [CT], calling_aet: [DEMO_CT]}
    action: draft
    profile: ct-abdomen-multiphase
    priority: stat
    destinations: [outbox]
"""


class DemoFailed(RadraftError):
    """A demo stage did not work; the message says which and why."""


@dataclass
class Stages:
    echo: Echo
    timings: dict[str, float] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.echo(f"[{len(self.timings) + 1}] {name} …")
        start = time.perf_counter()
        yield
        self.timings[name] = time.perf_counter() - start
        self.echo(f"    done in {self.timings[name]:.1f} s")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(root: Path) -> Path:
    (root / "rules.yaml").write_text(RULES)
    data: dict[str, Any] = {
        "data_dir": str(root / "data"), "rules_file": "rules.yaml",
        "dicom": {"host": "127.0.0.1", "port": _free_port(), "stable_seconds": 2},
        "hl7": {"host": "127.0.0.1", "port": _free_port()},
        "web": {"host": "127.0.0.1", "port": _free_port()},
        "destinations": {"outbox": {"kind": "folder", "path": str(root / "outbox")}},
        "jobs": {"sweep_interval_s": 1, "redeliver_after_s": 30},
        "delivery": {"base_backoff_s": 1, "max_backoff_s": 5},
    }
    path = root / "radraft.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _spawn(config: Path, args: list[str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", "from radraft.worker.cli.main import app; app()",
         "--config", str(config), *args],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DemoFailed(f"a server exited early; see {log}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise DemoFailed(f"port {port} did not open within {timeout:.0f} s; see {log}")


def _send_study(folder: Path, port: int, calling_aet: str) -> int:
    files = sorted(folder.rglob("*.dcm"))
    datasets = [dcmread(f) for f in files]
    ae = AE(ae_title=calling_aet)
    for uid in sorted({str(ds.SOPClassUID) for ds in datasets}):
        ae.add_requested_context(uid)
    assoc = ae.associate("127.0.0.1", port, ae_title="RADRAFT")
    if not assoc.is_established:
        raise DemoFailed(f"the DICOM node on port {port} refused the association")
    try:
        for path, ds in zip(files, datasets, strict=True):
            status = assoc.send_c_store(ds)
            if not status or int(status.Status) != 0:
                raise DemoFailed(f"C-STORE of {path} failed: {status}")
    finally:
        assoc.release()
    return len(files)


def _send_hl7(root: Path, port: int, accession: str, patient_id: str, echo: Echo) -> bool:
    """Order and labs over MLLP through the EHR package; False when it is not installed."""
    try:
        mllp = importlib.import_module("radraft.ehr.mllp")
        samples = importlib.import_module("radraft.ehr.samples")
    except ImportError as exc:
        echo(f"    HL7 listener/sender not installed in this tree ({exc.name})")
        return False
    for message in samples.demo_messages(accession=accession, patient_id=patient_id):
        mllp.send_mllp("127.0.0.1", port, message, timeout_s=10)
    return True


def _wait_for_outputs(config: Path, study_uid: str, echo: Echo, timeout: float) -> Draft:
    settings = load_settings(config)
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    deadline = time.monotonic() + timeout
    last = ""
    try:
        while time.monotonic() < deadline:
            with sessions() as session:
                job = session.scalars(select(Job).where(Job.study_uid == study_uid)).first()
                draft = session.scalars(select(Draft).where(Draft.study_uid == study_uid)).first()
                states = session.scalars(select(Delivery.state).join(Draft).where(
                    Draft.study_uid == study_uid)).all() if draft else []
                line = ("waiting for the study to become stable" if job is None else
                        f"job {job.state} (attempt {job.attempts})" if draft is None else
                        f"deliveries: {sum(s == 'delivered' for s in states)}/{len(states)}")
                if job is not None and job.state == "failed":
                    raise DemoFailed(f"the draft failed: {job.last_error}")
                if job is not None and job.last_error.startswith("cannot draft"):
                    raise DemoFailed(f"the worker {job.last_error}")
                if job is not None and job.last_error and job.state == "queued":
                    line += f" — {job.last_error[:160]}"
                if draft is not None and states and all(s == "delivered" for s in states):
                    return draft
                if any(s in ("failed", "expired") for s in states):
                    raise DemoFailed("a delivery failed; see the delivery table")
            if line != last:
                echo(f"    {line}")
                last = line
            time.sleep(0.5)
    finally:
        engine.dispose()
    raise DemoFailed(f"no complete draft within {timeout:.0f} s (last: {last})")


def run_demo(root: Path, echo: Echo, *, timeout_s: float = 600) -> int:
    """Run the demo in `root`; returns the exit code (0: the whole chain worked)."""
    from radraft.worker.draft_local import ensure_model

    root.mkdir(parents=True, exist_ok=True)
    stages = Stages(echo)
    config = _config(root)
    settings = load_settings(config)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with stages.stage("tiny test model"):
            ensure_model(settings, echo)
        with stages.stage("synthetic CT study (3 phases) and a prior"):
            current = write_phantom_study(root / "studies" / "current", slices=24)
            prior = write_phantom_study(root / "studies" / "prior", slices=24,
                                        phases=["portal venous"], prior_of=current)
        with stages.stage("start node and listener (radraft serve), worker (radraft worker)"):
            procs.append(_spawn(config, ["serve"], root / "serve.log"))
            procs.append(_spawn(config, ["worker", "--pool", "solo"], root / "worker.log"))
            _wait_port(settings.dicom.port, procs[0], root / "serve.log", 60)
            _wait_port(settings.hl7.port, procs[0], root / "serve.log", 60)  # starts after
        with stages.stage("HL7 order and labs over MLLP"):
            if not _send_hl7(root, settings.hl7.port, current.accession, current.patient_id,
                             echo):
                stages.skipped.append("HL7 order and labs")
        with stages.stage("send the prior and the study over DICOM (C-STORE)"):
            # The prior as the archive sends it (ignored by the rules), then the new study.
            count = _send_study(prior.directory, settings.dicom.port, "DEMO_ARCHIVE")
            count += _send_study(current.directory, settings.dicom.port, "DEMO_CT")
            echo(f"    {count} instances stored")
        with stages.stage("stable → job → frames → model → SR/KOS/HL7 → outbox → folder"):
            draft = _wait_for_outputs(config, current.study_uid, echo, timeout_s)
    except (RadraftError, OSError) as exc:
        echo(f"FAILED: {exc}")
        echo(f"logs: {root / 'serve.log'}, {root / 'worker.log'}")
        return 1
    finally:
        for proc in reversed(procs):
            _stop(proc)
    outbox = root / "outbox" / current.study_uid
    echo("")
    echo(f"draft of study {current.study_uid}: triage {draft.triage_level}, "
         f"{draft.frame_count} frames, model {draft.model_name}")
    for path in sorted(outbox.iterdir()):
        echo(f"  {path.name.split('-')[0]:8} {path}")
    echo("timings: " + ", ".join(f"{k.split(' ')[0]} {v:.1f} s"
                                 for k, v in stages.timings.items()))
    echo("NOTE: the tiny test model is randomly initialised: its report text is meaningless. "
         "For real drafts point model.path (in-process) or model.base_urls (vLLM) at a real "
         "model (README, \"Model\").")
    if stages.skipped:
        echo(f"INCOMPLETE: skipped {', '.join(stages.skipped)}")
        return 1
    return 0
