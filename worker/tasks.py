"""The Celery tasks. Each carries (row id, attempts) and is idempotent: a duplicate finds the
row already claimed or settled and returns "not-due"."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from celery import Celery
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import Job, make_engine, make_sessionmaker
from radraft.core.errors import ConfigError
from radraft.core.settings import Settings
from radraft.reporting.model import ModelBackend, make_backend
from radraft.worker.draft_job import draft_job
from radraft.worker.enqueue import (
    DELIVER_TASK,
    DRAFT_TASK,
    PREFETCH_TASK,
    Enqueue,
    celery_enqueue,
)
from radraft.worker.heartbeat import worker_identity
from radraft.worker.lease import LeaseKeeper
from radraft.worker.outbox import deliver as deliver_row
from radraft.worker.prefetch import run_prefetch
from radraft.worker.quality_tasks import register_score_task

log = logging.getLogger(__name__)


@dataclass
class _ProcessState:
    """Per worker process (created after the prefork fork, never shared across it)."""

    pid: int
    sessions: sessionmaker[Session]
    enqueue: Enqueue
    backend: ModelBackend | None = None


class WorkerResources:
    """Engine and the model backend, built lazily once per process."""

    def __init__(self, app: Celery, settings: Settings) -> None:
        self._app = app
        self._settings = settings
        self._state: _ProcessState | None = None

    def state(self) -> _ProcessState:
        if self._state is None or self._state.pid != os.getpid():
            engine = make_engine(self._settings.database_url, pool_size=2)
            self._state = _ProcessState(
                pid=os.getpid(), sessions=make_sessionmaker(engine),
                enqueue=celery_enqueue(self._app),
            )
        return self._state

    def backend(self) -> ModelBackend:
        state = self.state()
        if state.backend is None:
            # The model loads once per process (in-process weights, or an HTTP client).
            state.backend = make_backend(self._settings)
        return state.backend


def register_tasks(app: Celery, settings: Settings) -> WorkerResources:
    """Register radraft.draft, radraft.deliver and radraft.score on `app`."""
    resources = WorkerResources(app, settings)

    @app.task(name=DRAFT_TASK, acks_late=True, reject_on_worker_lost=True)  # type: ignore[untyped-decorator]
    def draft(job_id: int, attempts: int) -> str:
        state = resources.state()
        try:
            backend = resources.backend()
        except ConfigError as exc:
            # Not claimed: the job stays queued (the sweeper re-sends it) and says why.
            with state.sessions() as session:
                session.execute(update(Job).where(Job.id == job_id)
                                .values(last_error=f"cannot draft: {exc}"))
                session.commit()
            log.error("job %d: cannot draft: %s", job_id, exc)
            return "not-configured"
        # The job's lease follows this process's life, not only the time limit (lease.py).
        with LeaseKeeper(state.sessions, job_id, worker_identity(), settings.jobs):
            return draft_job(state.sessions, settings, backend, job_id, attempts,
                             state.enqueue)

    @app.task(name=DELIVER_TASK, acks_late=True, reject_on_worker_lost=True)  # type: ignore[untyped-decorator]
    def deliver(delivery_id: int, attempts: int) -> str:
        return deliver_row(resources.state().sessions, settings, delivery_id, attempts)

    register_score_task(app, settings, resources.state)  # pairs with final reports

    @app.task(name=PREFETCH_TASK, acks_late=True, reject_on_worker_lost=True)  # type: ignore[untyped-decorator]
    def prefetch(prefetch_id: int, attempts: int) -> str:
        with resources.state().sessions() as session:
            return run_prefetch(session, settings, prefetch_id, attempts)

    return resources
