"""Worker liveness in the database: each `radraft worker` process upserts one row every
BEAT_S seconds (the database clock), so the console shows live workers whatever the broker
(the embedded SQLAlchemy broker has no remote control to ping workers with)."""

from __future__ import annotations

import logging
import os
import socket
import threading

from sqlalchemy import delete, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import Job, WorkerHeartbeat, db_now

log = logging.getLogger(__name__)

BEAT_S = 30.0
ALIVE_WITHIN_S = 3 * BEAT_S  # two beats missed: shown as not alive
# The beating process's name, inherited by its Celery pool processes: a job records it as
# its worker, so the sweeper can tell a job whose worker stopped beating (sweeper.py).
WORKER_ENV = "RADRAFT_WORKER_NAME"


def worker_identity() -> str:
    """The name a claimed job records as its worker (the heartbeat row's name)."""
    return os.environ.get(WORKER_ENV) or socket.gethostname()


def beat(session: Session, name: str, queues: str, *, first: bool = False) -> None:
    """Record that worker `name` is alive now (commits).

    On a process's first beat, a row already there is a previous process of the same name
    (a restarted container reuses host and pid): its running jobs are not ours, so their
    leases end now and the sweeper takes them back.
    """
    now = db_now(session)
    row = session.scalars(select(WorkerHeartbeat).where(WorkerHeartbeat.name == name)).first()
    if row is None:
        session.add(WorkerHeartbeat(name=name, queues=queues, started_at=now, seen_at=now))
    else:
        row.seen_at, row.queues = now, queues
        if first:
            row.started_at = now
            session.execute(update(Job).where(Job.worker == name, Job.state == "running")
                            .values(lease_until=now))
    session.commit()


class Heartbeat:
    """A daemon thread beating for this process; `stop()` removes the row (a clean exit
    is not a dead worker)."""

    name = "heartbeat"

    def __init__(self, sessions: sessionmaker[Session], queues: str,
                 worker_name: str | None = None, interval_s: float = BEAT_S) -> None:
        self._sessions, self._queues, self._interval = sessions, queues, interval_s
        self.worker_name = worker_name or f"{socket.gethostname()}:{os.getpid()}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="radraft-heartbeat",
                                        daemon=True)

    def start(self) -> None:
        os.environ[WORKER_ENV] = self.worker_name  # before the pool processes are made
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        try:
            with self._sessions() as session:
                session.execute(delete(WorkerHeartbeat).where(
                    WorkerHeartbeat.name == self.worker_name))
                session.commit()
        except SQLAlchemyError:
            log.warning("heartbeat row of %s not removed", self.worker_name)

    def _run(self) -> None:
        first = True
        while not self._stop.is_set():
            try:
                with self._sessions() as session:
                    beat(session, self.worker_name, self._queues, first=first)
                first = False
            except SQLAlchemyError:  # the loop outlives a database hiccup
                log.warning("heartbeat of %s failed; retrying", self.worker_name)
            self._stop.wait(self._interval)
