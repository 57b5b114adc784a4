"""Pipeline benchmark: a 600-slice study from "stable" to the outbox, per stage.

    python -m bench.pipeline [--reps 3] [--slices 200] [--size 512] [--no-vllm]

A generated CT study (3 phases x --slices slices x --size^2) and a one-phase prior of the
same patient are indexed in a SQLite database (priors local: no C-MOVE; page cache warm
after the first, untimed, run). Each repetition creates a Job for a new version and runs
the draft task in this process: gather, priors, context, frames, prompt, model, outputs
(SR, TID 1500, KOS, HL7, text, HTML), contact sheet, one commit. The model call is
excluded from the total and shown on its own line. The model is the tiny test model on the
real vLLM server (started by the bench from `$VLLM_VENV`), so the run also gives studies per
hour through one worker (stable -> outbox, model included); with --no-vllm, or when the
model extra (torch) is not installed, the stand-in backend answers at once. Reference in
the same run: the decode floor, `pydicom.dcmread` + `pixel_array` of every file of study
and prior, nothing else.
Medians of --reps repetitions; peak RSS from ru_maxrss. Target: <= 2 s excluding the model.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench._vllm import vllm_server

CACHE = Path(os.environ.get("RADRAFT_BENCH_DIR", "/tmp/radraft-bench-pipeline"))
REPORT = {
    "exam": "CT abdomen", "technique": "multiphase", "comparison": "prior",
    "clinical_history": "benchmark",
    "findings": [{"system": "liver", "text": "stand-in finding", "severity": "minor",
                  "finding_type": "SCT:52988006", "finding_site": "SCT:12738006",
                  "frames": [1, 2]}],
    "impression": [{"rank": 1, "text": "stand-in"}], "recommendations": [],
    "triage": {"level": "routine", "reasons": []}, "limitations": "stand-in model",
}


def _studies(slices: int, size: int) -> tuple[Path, Path]:
    from radraft.reporting.phantom import write_phantom_study

    root = CACHE / f"ct-{slices}x{size}"
    current, prior = root / "current", root / "prior"
    if not (root / "done").exists():
        print(f"writing the study (3 x {slices} slices of {size}^2) and a prior ...", flush=True)
        study = write_phantom_study(current, slices=slices, size=size)
        write_phantom_study(prior, slices=slices, size=size, phases=["portal venous"],
                            prior_of=study)
        (root / "done").touch()
    return current, prior


def _index(session: Any, folder: Path) -> Any:
    from pydicom import dcmread

    from radraft.core.db import Instance, Series, Study

    now = datetime.now(UTC)
    study = None
    series: dict[str, Any] = {}
    for path in sorted(folder.rglob("*.dcm")):
        ds = dcmread(path, stop_before_pixels=True)
        if study is None:
            study = Study(study_uid=str(ds.StudyInstanceUID), patient_id=str(ds.PatientID),
                          accession=str(ds.get("AccessionNumber", "")),
                          study_date=str(ds.StudyDate), modalities="CT",
                          first_received_at=now, last_received_at=now)
            session.add(study)
            session.flush()
        uid = str(ds.SeriesInstanceUID)
        if uid not in series:
            series[uid] = Series(study_id=study.id, series_uid=uid, modality="CT")
            session.add(series[uid])
            session.flush()
        session.add(Instance(study_id=study.id, series_id=series[uid].id,
                             sop_uid=str(ds.SOPInstanceUID), sop_class_uid=str(ds.SOPClassUID),
                             path=str(path), received_at=now))
    session.commit()
    return study


def _floor(folders: list[Path]) -> float:
    from pydicom import dcmread

    start = time.perf_counter()
    for folder in folders:
        for path in sorted(folder.rglob("*.dcm")):
            _ = dcmread(path).pixel_array
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--no-vllm", action="store_true", help="a stand-in model answers")
    args = parser.parse_args(argv)

    from radraft.core.db import make_engine, make_sessionmaker
    from radraft.core.db.migrate import upgrade
    from radraft.core.settings import Settings

    current, prior = _studies(args.slices, args.size)
    work = Path(tempfile.mkdtemp(prefix="radraft-bench-pipeline-"))
    url = f"sqlite:///{work / 'radraft.db'}"
    upgrade(url)
    settings = Settings(data_dir=work / "data", database_url=url, broker_url="memory://",
                        destinations={"outbox": {"kind": "folder", "path": str(work / "out")}})
    sessions = make_sessionmaker(make_engine(url))
    with sessions() as session:
        study = _index(session, current)
        _index(session, prior)
    from radraft.reporting.model import ModelBackend, make_backend
    from radraft.reporting.model.stand_in import StandInBackend

    backend: ModelBackend = StandInBackend(REPORT)
    model_kind = "stand-in"
    with ExitStack() as stack:
        if not args.no_vllm:
            try:
                from radraft.reporting.tiny_model import build_tiny_model
            except ImportError as exc:
                print(f"model extra not installed ({exc}); the stand-in answers", flush=True)
            else:
                model = build_tiny_model(work / "tiny")
                url = stack.enter_context(vllm_server(model, work / "vllm.log",
                                                      max_model_len=16384))
                settings = settings.model_copy(update={"model": settings.model.model_copy(
                    update={"backend": "openai", "base_urls": [url]})})
                backend, model_kind = make_backend(settings), "tiny model on vLLM"
        return _measure(args, settings, sessions, study, current, prior, backend, model_kind)


def _measure(args: argparse.Namespace, settings: Any, sessions: Any, study: Any,
             current: Path, prior: Path, backend: Any, model_kind: str) -> int:
    from radraft.core.db import Job
    from radraft.core.types import Priority, StudyStable
    from radraft.dicom_node.rules import RuleOutcome
    from radraft.worker.draft_job import draft_job
    from radraft.worker.jobs import create_jobs

    outcome = RuleOutcome("bench", "draft", profile="ct-abdomen-multiphase",
                          priority=Priority.ROUTINE, destinations=("outbox",))
    runs: list[dict[str, float]] = []
    floors: list[float] = []
    for rep in range(args.reps + 1):  # the first run warms the page cache: not counted
        now = datetime.now(UTC)
        stable = StudyStable(study.study_uid, f"bench-{rep}", 0, 0, "BENCH", now, now)
        with sessions() as session:
            [wake] = create_jobs(session, settings, stable, [outcome])
            session.commit()
        state = draft_job(sessions, settings, backend, wake.row_id, 0, lambda _w: None)
        if state != "done":
            with sessions() as session:
                job = session.get(Job, wake.row_id)
                print(f"draft failed: {job.last_error if job else state}", file=sys.stderr)
            return 1
        with sessions() as session:
            job = session.get(Job, wake.row_id)
            assert job is not None
            timings = dict(job.timings)
        floor = _floor([current, prior])
        label = "warm-up" if rep == 0 else f"rep {rep}"
        excl = sum(v for k, v in timings.items() if k != "model")
        print(f"{label}: {excl:.2f} s excluding the model, floor {floor:.2f} s", flush=True)
        if rep:
            runs.append(timings)
            floors.append(floor)
    stages = list(runs[0])
    med = {k: statistics.median(r[k] for r in runs) for k in stages}
    total = statistics.median(sum(v for k, v in r.items() if k != "model") for r in runs)
    floor_med = statistics.median(floors)
    files = sum(1 for _ in current.rglob("*.dcm")) + sum(1 for _ in prior.rglob("*.dcm"))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nstudy {3 * args.slices} slices of {args.size}^2 + prior {args.slices} "
          f"({files} files), medians of {args.reps}, model: {model_kind}")
    print(f"{'stage':<16}{'seconds':>10}")
    for key in stages:
        print(f"{key:<16}{med[key]:>10.3f}"
              + (f"   (excluded; {model_kind})" if key == "model" else ""))
    print(f"{'total excl model':<16}{total:>10.3f}   target <= 2 s")
    print(f"{'decode floor':<16}{floor_med:>10.3f}   (reference: dcmread + pixel_array)")
    print(f"{'ratio':<16}{total / floor_med:>10.2f}x the decode floor")
    print(f"{'peak RSS':<16}{rss:>10.0f} MiB (this process: radraft and reference)")
    with_model = statistics.median(sum(r.values()) for r in runs)
    print(f"{'studies/hour':<16}{3600 / with_model:>10.0f}   one worker, one slot, model "
          f"included ({model_kind})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
