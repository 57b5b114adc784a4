"""Time to alert: last image -> study complete -> draft start -> outbox -> ED alert received.

    python -m bench.latency [--reps 1] [--slices 40] [--modes timer,mpps,prefetch]

A generated urgent CT study (one portal-venous series, --slices slices of 128^2) is sent by
dcmtk's storescu to a real radraft node (DicomNode on a free port, SQLite); a routing rule
drafts it urgent for an `ed` HL7 destination, an MLLP peer in this process that timestamps
the alert and answers AA. Drafts and deliveries run in this process on a thread pool (the
Celery tasks' bodies: draft_job, deliver, run_prefetch), so the figures are radraft's own
latency without broker hops. The model is a stand-in answering at once with an urgent
triage (frames, prompt, SR/KOS/HL7 outputs are real): add the model's own time.

Modes:
  timer     no MPPS: the study is complete when no image arrived for stable_seconds (30)
  mpps      pynetdicom's SCU sends N-CREATE before the images and N-SET COMPLETED (listing
            every image) right after the last one
  prefetch  as mpps, and an ORM^O01 over MLLP first: the order's prior prefetch C-GETs
            the patient's prior from Orthanc before the study arrives (pacs configured)
  killed    as mpps, but drafts by two real `radraft worker` processes on RabbitMQ and a
            stand-in model server; the worker that took the job is SIGKILLed in its model
            call (bench/latency_killed.py; not in the default --modes)
Prints each interval's median over --reps. Target: mpps + prefetch last image -> ED alert
<= 5 s plus the model's own time, against >= 30 s with the timer alone.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from bench.latency_peers import REPORT, AlertPeer, Marks, free_port, mllp_send, orm

STABLE_S = 30.0
INTERVALS = (("complete", "last image -> complete"), ("draft_start", "complete -> draft start"),
             ("outbox", "draft start -> outbox"), ("alert", "outbox -> ED alert"),
             ("total", "last image -> ED alert"))
@contextmanager
def _orthanc_with_prior(work: Path, prior: Path) -> Iterator[int]:
    from tests.orthanc import OrthancServer

    server = OrthancServer(work / "orthanc", extra_config={
        "DicomAlwaysAllowFind": True, "DicomAlwaysAllowGet": True})
    with server:
        for path in sorted(prior.rglob("*.dcm")):
            server.upload(path)
        yield server.dicom_port


def _settings(work: Path, mode: str, peer_port: int, pacs_port: int) -> Any:
    from radraft.core.settings import load_settings

    rules = work / "rules.yaml"
    rules.write_text(yaml.safe_dump({"rules": [{
        "name": "ct-urgent-ed", "match": {"modality": ["CT"]}, "action": "draft",
        "profile": "ct-generic", "priority": "urgent", "destinations": ["ed"]}]}))
    data: dict[str, Any] = {
        "data_dir": str(work / "data"), "database_url": f"sqlite:///{work / 'radraft.db'}",
        "broker_url": "memory://", "rules_file": str(rules),
        "dicom": {"port": free_port(), "host": "127.0.0.1", "stable_seconds": STABLE_S,
                  "min_free_bytes": 0},
        "hl7": {"host": "127.0.0.1", "port": free_port()},
        "profiles": {"ct-generic": {"frames": {"frame_size": 224, "max_frames": 32},
                                    "max_priors": 1}},
        "destinations": {"ed": {"kind": "hl7", "host": "127.0.0.1", "port": peer_port,
                                "role": "ed"}},
    }
    if mode == "prefetch":
        data["pacs"] = {"host": "127.0.0.1", "port": pacs_port, "ae_title": "ORTHANC",
                        "timeout_s": 20}
    config = work / "radraft.yaml"
    config.write_text(yaml.safe_dump(data))
    return load_settings(config)


def run_once(mode: str, study: Path, prior: Path, pacs_port: int) -> dict[str, float]:
    """One study through a fresh radraft in `mode`; returns the intervals in seconds."""
    from pydicom import dcmread

    from radraft.core.db import PriorPrefetch, make_engine, make_sessionmaker
    from radraft.core.db.migrate import upgrade
    from radraft.dicom_node.node import DicomNode
    from radraft.dicom_node.rules import RulesWatcher
    from radraft.ehr.apply import OrderChange
    from radraft.ehr.component import Hl7Listener
    from radraft.reporting.model.stand_in import StandInBackend
    from radraft.worker.draft_job import draft_job
    from radraft.worker.enqueue import WakeUp
    from radraft.worker.jobs import make_on_stable
    from radraft.worker.outbox import deliver
    from radraft.worker.prefetch import request_prefetch, run_prefetch

    marks = Marks()
    peer = AlertPeer(lambda: marks)
    work = Path(tempfile.mkdtemp(prefix=f"radraft-bench-latency-{mode}-"))
    settings = _settings(work, mode, peer.port, pacs_port)
    upgrade(settings.database_url)
    sessions = make_sessionmaker(make_engine(settings.database_url, pool_size=8))
    backend = StandInBackend(REPORT)
    pool = ThreadPoolExecutor(4)

    def run(wake: WakeUp) -> None:
        if wake.kind == "job":
            marks.draft_start = marks.draft_start or time.monotonic()
            draft_job(sessions, settings, backend, wake.row_id, wake.attempts, enqueue)
            marks.outbox = marks.outbox or time.monotonic()
        elif wake.kind == "delivery":
            deliver(sessions, settings, wake.row_id, wake.attempts)
        else:
            with sessions() as session:
                run_prefetch(session, settings, wake.row_id, wake.attempts)

    def guarded(wake: WakeUp) -> None:
        try:
            run(wake)
        except Exception:  # noqa: BLE001 - a bench: show it, the run then times out
            traceback.print_exc()

    def enqueue(wake: WakeUp) -> None:
        pool.submit(guarded, wake)

    rules = RulesWatcher(settings.rules_file)
    on_stable = make_on_stable(settings, sessions, rules, enqueue)

    def stable(event: Any) -> None:
        marks.complete = marks.complete or time.monotonic()
        on_stable(event)

    def on_order(change: OrderChange) -> None:
        with sessions() as session:
            wake = request_prefetch(session, settings, change.accession)
            session.commit()
        if wake is not None:
            enqueue(wake)

    node = DicomNode(settings, sessions, stable, poll_interval_s=0.2, rules=rules)
    hl7 = Hl7Listener(settings, sessions, on_order_change=on_order)
    files = sorted(study.rglob("*.dcm"))
    first = dcmread(files[0], stop_before_pixels=True)
    node.start()
    hl7.start()
    scu = None
    try:
        if mode == "prefetch":
            mllp_send(settings.hl7.port, orm(str(first.PatientID), str(first.AccessionNumber)))
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                with sessions() as session:
                    row = session.query(PriorPrefetch).first()
                    if row is not None and row.state in ("done", "failed"):
                        break
                time.sleep(0.1)
            print(f"  prefetch: {row.state if row else 'none'}, "
                  f"{row.retrieved if row else 0} prior(s) retrieved", flush=True)
        if mode in ("mpps", "prefetch"):
            from tests.mpps_helpers import MppsScu, completed, step_dataset

            scu = MppsScu(node.port, calling="CT1")
            status, step_uid = scu.create(step_dataset(
                str(first.StudyInstanceUID), accession=str(first.AccessionNumber)))
            assert status == 0, f"N-CREATE answered 0x{status:04X}"
        subprocess.run(["storescu", "-aet", "CT1", "-aec", "RADRAFT", "127.0.0.1",
                        str(node.port), *map(str, files)], check=True, capture_output=True)
        marks.last_image = time.monotonic()
        if scu is not None:
            assert scu.set(step_uid, completed(files)) == 0
            scu.close()
        if not marks.alerted.wait(STABLE_S + 60):
            raise RuntimeError(f"{mode}: no ED alert arrived (see {work})")
    finally:
        hl7.stop()
        node.stop()
        pool.shutdown(wait=True)
        peer.stop()
    return marks.intervals()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--slices", type=int, default=40)
    parser.add_argument("--modes", default="timer,mpps,prefetch")
    args = parser.parse_args(argv)
    from pydicom.uid import generate_uid

    from radraft.reporting.phantom import write_phantom_study

    source = Path(tempfile.mkdtemp(prefix="radraft-bench-latency-src-"))
    # The patient's prior exam, a year earlier, held by Orthanc (the PACS) in prefetch mode.
    write_phantom_study(source / "prior", slices=args.slices, phases=["portal venous"],
                        study_uid=generate_uid(), study_date="20251120",
                        accession="ACC-LAT-PRIOR")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    results: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    with _orthanc_with_prior(source, source / "prior") if "prefetch" in modes else \
            _no_pacs() as pacs_port:
        for rep in range(args.reps):
            for mode in modes:
                # A new study per run (a new Study Instance UID), the same patient and prior.
                write_phantom_study(source / f"study-{mode}-{rep}", slices=args.slices,
                                    phases=["portal venous"], study_uid=generate_uid(),
                                    seed=rep, accession=f"LAT-{mode[:3]}-{rep}")
                print(f"{mode}, rep {rep + 1}: sending ...", flush=True)
                if mode == "killed":
                    from bench.latency_killed import run_killed

                    intervals = run_killed(source / f"study-{mode}-{rep}")
                else:
                    intervals = run_once(mode, source / f"study-{mode}-{rep}",
                                         source / "prior", pacs_port)
                print("  " + ", ".join(f"{k} {v:.2f} s" for k, v in intervals.items()),
                      flush=True)
                results[mode].append(intervals)
    print(f"\nmedians of {args.reps} run(s); one CT series of {args.slices} slices 128^2; "
          "stand-in model (add the model's own time); drafts in-process (no broker hop)")
    table = [m for m in modes if m != "killed"]
    if table:
        print(f"{'interval':<26}" + "".join(f"{m:>12}" for m in table))
    for key, label in INTERVALS if table else ():
        row = "".join(f"{statistics.median(r[key] for r in results[m]):>12.2f}" for m in table)
        print(f"{label:<26}{row}")
    if "killed" in modes:
        print("\nkilled: MPPS, two `radraft worker` on RabbitMQ, the drafting one SIGKILLed "
              "inside its model call (jobs.heartbeat_s 1, time_limit_s 1800)")
        for key in results["killed"][0]:
            print(f"{key:<26}{statistics.median(r[key] for r in results['killed']):>12.2f}")
    return 0


@contextmanager
def _no_pacs() -> Iterator[int]:
    yield 0


if __name__ == "__main__":
    sys.exit(main())
