"""The sweeper: re-sends wake-ups for due rows and takes back expired leases.

Runs as a loop thread in `radraft worker` (or `radraft worker --sweep-only`). Several
sweepers at once are safe: every state change is a conditional UPDATE and claims check the
attempts count, so a duplicate wake-up does nothing.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from radraft.core import audit
from radraft.core.db import Delivery, Job, WorkerHeartbeat, db_now
from radraft.core.settings import Settings
from radraft.core.types import Priority
from radraft.worker.enqueue import Enqueue, WakeUp
from radraft.worker.prefetch import due_prefetches

log = logging.getLogger(__name__)

BATCH = 500


def _expire_leases(session: Session, now: datetime, settings: Settings) -> int:
    """Running jobs whose worker vanished: queued again, or failed past their cap.

    A worker vanished when its lease ran out, or at once when its heartbeat row stopped
    moving for `jobs.heartbeat_misses` beats (a SIGKILLed or powered-off worker). A job
    whose worker has no heartbeat row (a draft run in-process) waits for its lease.
    """
    silent_since = now - timedelta(
        seconds=settings.jobs.heartbeat_s * settings.jobs.heartbeat_misses)
    dead = select(WorkerHeartbeat.name).where(WorkerHeartbeat.seen_at < silent_since)
    # SKIP LOCKED: a worker storing its draft holds the job's row lock (draft_job._ours);
    # taking the job back under it would overwrite the result it is committing.
    stale = session.scalars(select(Job).where(
        Job.state == "running", or_(Job.lease_until < now, Job.worker.in_(dead)),
    ).limit(BATCH).with_for_update(skip_locked=True)).all()
    silent = set(session.scalars(dead)) if stale else set()
    for job in stale:
        # The lease is renewed by the drafting process (lease.py): either way it is gone.
        why = "worker heartbeat stale" if job.worker in silent else "lease expired"
        if job.attempts >= job.max_attempts:
            job.state = "failed"
            job.finished_at = now
            job.last_error = (job.last_error + "\n" if job.last_error else "") + (
                f"worker {job.worker or '?'} lost the job {job.attempts} time(s): "
                "attempts exhausted, an admin must look"
            )
            audit.record(session, "job.failed", study_uid=job.study_uid, job_id=job.id,
                         reason=f"{why}, attempts exhausted", attempts=job.attempts)
        else:
            job.state = "queued"
            job.next_attempt_at = now
            job.last_error = f"worker {job.worker or '?'} lost the job ({why})"
            job.lease_until = None
            audit.record(session, "job.requeued", study_uid=job.study_uid, job_id=job.id,
                         reason=why, attempts=job.attempts)
    return len(stale)


def sweep_once(session: Session, settings: Settings) -> list[WakeUp]:
    """Take back expired leases and collect the wake-ups for every due row (commits)."""
    now = db_now(session)
    _expire_leases(session, now, settings)
    later = now + timedelta(seconds=settings.jobs.redeliver_after_s)
    wakes: list[WakeUp] = []
    jobs = session.execute(select(Job.id, Job.attempts, Job.priority).where(
        Job.state == "queued", Job.next_attempt_at <= now,
    ).order_by(Job.next_attempt_at).limit(BATCH)).all()
    for job_id, attempts, priority in jobs:
        wakes.append(WakeUp("job", job_id, attempts, Priority(priority)))
    if jobs:
        session.execute(update(Job).where(Job.id.in_([j[0] for j in jobs]))
                        .values(next_attempt_at=later))
    deliveries = session.execute(select(Delivery.id, Delivery.attempts).where(
        Delivery.state == "pending", Delivery.next_attempt_at <= now,
    ).order_by(Delivery.next_attempt_at).limit(BATCH)).all()
    for delivery_id, attempts in deliveries:
        wakes.append(WakeUp("delivery", delivery_id, attempts))
    if deliveries:
        session.execute(update(Delivery).where(Delivery.id.in_([d[0] for d in deliveries]))
                        .values(next_attempt_at=later))
    wakes += due_prefetches(session, later - now)
    session.commit()
    return wakes


class Sweeper:
    """A daemon thread running `sweep_once` every `jobs.sweep_interval_s`."""

    name = "sweeper"

    def __init__(
        self, settings: Settings, sessions: sessionmaker[Session], enqueue: Enqueue,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._enqueue = enqueue
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="radraft-sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def run_once(self) -> int:
        with self._sessions() as session:
            wakes = sweep_once(session, self._settings)
        for wake in wakes:
            self._enqueue(wake)
        if wakes:
            log.info("sweeper: re-sent %d wake-up(s)", len(wakes))
        return len(wakes)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except (SQLAlchemyError, OSError):  # the loop outlives a database hiccup
                log.exception("sweeper pass failed; retrying in %.0f s",
                              self._settings.jobs.sweep_interval_s)
            self._stop.wait(self._settings.jobs.sweep_interval_s)
