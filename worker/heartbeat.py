"""Worker liveness in the database: each `radraft worker` process upserts one row every
BEAT_S seconds (the database clock), so the console shows live workers whatever the broker
(the embedded SQLAlchemy broker has no remote control to ping workers with)."""

from __future__ import annotations

import logging
import os
import socket
import threading

from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import WorkerHeartbeat, db_now

log = logging.getLogger(__name__)

BEAT_S = 30.0
ALIVE_WITHIN_S = 3 * BEAT_S  # two beats missed: shown as not alive


def beat(session: Session, name: str, queues: str) -> None:
    """Record that worker `name` is alive now (commits)."""
    now = db_now(session)
    row = session.scalars(select(WorkerHeartbeat).where(WorkerHeartbeat.name == name)).first()
    if row is None:
        session.add(WorkerHeartbeat(name=name, queues=queues, started_at=now, seen_at=now))
    else:
        row.seen_at, row.queues = now, queues
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
        while not self._stop.is_set():
            try:
                with self._sessions() as session:
                    beat(session, self.worker_name, self._queues)
            except SQLAlchemyError:  # the loop outlives a database hiccup
                log.warning("heartbeat of %s failed; retrying", self.worker_name)
            self._stop.wait(self._interval)
