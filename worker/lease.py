"""A running draft keeps its job's lease short and renews it from the process doing the work.

The heartbeat row (worker/heartbeat.py) is beaten by the `radraft worker` main process;
with the prefork pool the draft runs in a child, and a child killed alone (the OOM killer,
a crash in native code) leaves the main process beating. So the task's own process also
renews `lease_until` to `heartbeat_s * heartbeat_misses` ahead every `heartbeat_s`: if it
dies, the lease runs out within seconds and the sweeper takes the job back, instead of
holding it for `jobs.time_limit_s` (the claim's first lease).
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from types import TracebackType

from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import Job, db_now
from radraft.core.settings import JobSettings

log = logging.getLogger(__name__)


def renew(session: Session, job_id: int, worker: str, ahead_s: float) -> bool:
    """Move the lease of `job_id` (running, claimed by `worker`) to now + ahead_s."""
    now = db_now(session)
    result = session.execute(update(Job).where(
        Job.id == job_id, Job.state == "running", Job.worker == worker,
    ).values(lease_until=now + timedelta(seconds=ahead_s))
        .execution_options(synchronize_session=False))
    session.commit()
    return getattr(result, "rowcount", 0) == 1


class LeaseKeeper:
    """`with LeaseKeeper(...):` around a draft: a thread renewing its job's lease."""

    def __init__(self, sessions: sessionmaker[Session], job_id: int, worker: str,
                 jobs: JobSettings) -> None:
        self._sessions, self._job_id, self._worker = sessions, job_id, worker
        self._interval = jobs.heartbeat_s
        self._ahead = jobs.heartbeat_s * jobs.heartbeat_misses
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="radraft-lease", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        # The first renewal waits one interval: the claim (inside the task) comes first.
        while not self._stop.wait(self._interval):
            try:
                with self._sessions() as session:
                    renew(session, self._job_id, self._worker, self._ahead)
            except SQLAlchemyError:  # the draft goes on; the next beat tries again
                log.warning("job %d: lease renewal failed; retrying", self._job_id)
