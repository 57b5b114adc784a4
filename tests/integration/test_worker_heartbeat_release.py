"""A running job whose worker's heartbeat went stale is taken back at once (not after its
lease); a job of a worker that beats, or of no beating worker at all, keeps its lease."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from helpers.worker import index_folder, stable_of, worker_settings
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import AuditEvent, Job, WorkerHeartbeat, db_now
from radraft.core.types import Priority
from radraft.dicom_node.rules import RuleOutcome
from radraft.reporting.phantom import write_phantom_study
from radraft.worker.enqueue import WakeUp
from radraft.worker.heartbeat import beat
from radraft.worker.jobs import claim_job, create_jobs
from radraft.worker.lease import LeaseKeeper
from radraft.worker.sweeper import sweep_once


def _outcome(profile: str) -> RuleOutcome:
    return RuleOutcome("r-" + profile, "draft", profile=profile, priority=Priority.URGENT)


def test_stale_heartbeat_releases_the_job_at_once(
    sessions: sessionmaker[Session], tmp_path: Path, db_url: str,
) -> None:
    settings = worker_settings(tmp_path, db_url, jobs={"heartbeat_s": 1, "heartbeat_misses": 3})
    study_dir = tmp_path / "study"
    write_phantom_study(study_dir, slices=2, size=32, phases=["portal venous"])
    with sessions() as session:
        study = index_folder(session, study_dir)
        wakes = create_jobs(session, settings, stable_of(study),
                            [_outcome("ct-generic"), _outcome("ct-chest"), _outcome("ct-head")])
        session.commit()
        dead, alive, unknown = (w.row_id for w in wakes)
        # Leases of half an hour: only the heartbeat can free a job within this test.
        for job_id, worker in ((dead, "host:1"), (alive, "host:2"), (unknown, "in-process")):
            assert claim_job(session, job_id, 0, worker=worker, lease_s=1800)
        beat(session, "host:1", "stat")
        beat(session, "host:2", "stat")
        session.execute(update(WorkerHeartbeat).where(WorkerHeartbeat.name == "host:1")
                        .values(seen_at=db_now(session) - timedelta(seconds=3.5)))
        session.commit()
        assert sweep_once(session, settings) == [WakeUp("job", dead, 1, Priority.URGENT)]
        states = {job_id: state for job_id, state in session.execute(select(Job.id, Job.state))}
        assert states == {dead: "queued", alive: "running", unknown: "running"}
        event = session.scalars(select(AuditEvent).where(AuditEvent.kind == "job.requeued")).one()
        assert event.job_id == dead and event.details["reason"] == "worker heartbeat stale"
        # A second worker takes it: one more attempt, not a second job.
        assert claim_job(session, dead, 1, worker="host:3", lease_s=1800) is not None
        assert sweep_once(session, settings) == []


def test_restarted_worker_of_the_same_name_frees_its_predecessors_jobs(
    sessions: sessionmaker[Session], tmp_path: Path, db_url: str,
) -> None:
    settings = worker_settings(tmp_path, db_url)
    study_dir = tmp_path / "study"
    write_phantom_study(study_dir, slices=2, size=32, phases=["portal venous"])
    with sessions() as session:
        study = index_folder(session, study_dir)
        [wake] = create_jobs(session, settings, stable_of(study), [_outcome("ct-generic")])
        session.commit()
        beat(session, "pod:7", "stat", first=True)
        assert claim_job(session, wake.row_id, 0, worker="pod:7", lease_s=1800)
        beat(session, "pod:7", "stat")  # the same process beating: nothing changes
        assert sweep_once(session, settings) == []
        # A container restarted with the same host name and pid: its first beat.
        beat(session, "pod:7", "stat", first=True)
        assert sweep_once(session, settings) == [WakeUp("job", wake.row_id, 1, Priority.URGENT)]


def test_a_drafting_process_that_dies_lets_its_lease_run_out_in_seconds(
    sessions: sessionmaker[Session], tmp_path: Path, db_url: str,
) -> None:
    """A pool child killed alone: its main process still beats, but the lease it renewed
    runs out within heartbeat_s * heartbeat_misses."""
    settings = worker_settings(tmp_path, db_url,
                               jobs={"heartbeat_s": 0.2, "heartbeat_misses": 3})
    study_dir = tmp_path / "study"
    write_phantom_study(study_dir, slices=2, size=32, phases=["portal venous"])
    with sessions() as session:
        study = index_folder(session, study_dir)
        [wake] = create_jobs(session, settings, stable_of(study), [_outcome("ct-generic")])
        session.commit()
        beat(session, "host:9", "stat")
        assert claim_job(session, wake.row_id, 0, worker="host:9", lease_s=1800)
    with LeaseKeeper(sessions, wake.row_id, "host:9", settings.jobs):
        time.sleep(1.0)  # renewed a few times: the lease is now about 0.6 s ahead
        with sessions() as session:
            beat(session, "host:9", "stat")  # its main process beats all along
            assert sweep_once(session, settings) == []
            job = session.get(Job, wake.row_id)
            assert job is not None and job.lease_until is not None
            assert job.lease_until - db_now(session) < timedelta(seconds=5)
    time.sleep(1.0)  # the process "died": no renewal, the lease runs out
    with sessions() as session:
        beat(session, "host:9", "stat")  # its main process still beats
        assert sweep_once(session, settings) == [
            WakeUp("job", wake.row_id, 1, Priority.URGENT)]
