"""The draft task holds no database transaction across slow work: while the model is busy,
no radraft connection is "idle in transaction" (PostgreSQL's pg_stat_activity); and a job
taken back while it was drafted is not stored by the worker that lost it."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from helpers.worker import index_folder, stable_of, worker_settings
from sqlalchemy import select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import Delivery, Draft, Job, db_now
from radraft.dicom_node.rules import RuleOutcome
from radraft.reporting.model.stand_in import StandInBackend
from radraft.reporting.phantom import write_phantom_study
from radraft.reporting.prompts import Prompt
from radraft.reporting.sequence import FrameSequence
from radraft.worker.draft_job import draft_job
from radraft.worker.jobs import create_jobs
from radraft.worker.sweeper import sweep_once

WAIT_S = 120  # generous: the machine may be loaded


@pytest.fixture(scope="module")
def phantom_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("study")
    write_phantom_study(out, slices=4, size=48, phases=["portal venous"])
    return out


def _queued_job(sessions: sessionmaker[Session], settings: object, folder: Path) -> int:
    with sessions() as session:
        study = index_folder(session, folder)
        [wake] = create_jobs(session, settings, stable_of(study),  # type: ignore[arg-type]
                             [RuleOutcome("all", "draft", profile="ct-generic")])
        session.commit()
    return wake.row_id


def _transactions_open(db_url: str) -> list[tuple[int, str, str]]:
    """(pid, state, last query) of every other connection to the test database that is
    inside a transaction without running a statement."""
    url = make_url(db_url)
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        rows = conn.execute(
            "SELECT pid, state, query FROM pg_stat_activity WHERE datname = %s "
            "AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%%'",
            (url.database,)).fetchall()
    return [(int(pid), str(state), str(query)) for pid, state, query in rows]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_no_transaction_open_while_the_model_drafts(
    sessions: sessionmaker[Session], tmp_path: Path, db_url: str, phantom_dir: Path,
) -> None:
    settings = worker_settings(tmp_path, db_url)
    job_id = _queued_job(sessions, settings, phantom_dir)
    entered, release = threading.Event(), threading.Event()

    def slow_model(_seq: FrameSequence, _prompt: Prompt) -> None:
        entered.set()
        assert release.wait(WAIT_S), "the test never released the model call"

    states: list[str] = []
    worker = threading.Thread(target=lambda: states.append(draft_job(
        sessions, settings, StandInBackend(before=slow_model), job_id, 0, lambda _w: None)))
    worker.start()
    try:
        assert entered.wait(WAIT_S), "the draft never reached the model call"
        open_during_model = _transactions_open(db_url)
        # The check can see one: a session of the same engine left inside a transaction.
        with sessions() as session:
            session.execute(text("SELECT 1"))
            control = _transactions_open(db_url)
            with sessions() as peek:  # the claim is committed and visible meanwhile
                job = peek.get(Job, job_id)
                assert job is not None and job.state == "running" and job.attempts == 1
    finally:
        release.set()
        worker.join(WAIT_S)
    assert open_during_model == []
    assert len(control) == 1 and control[0][2] == "SELECT 1"
    assert states == ["done"]
    with sessions() as session:
        assert session.scalars(select(Draft.job_id)).all() == [job_id]
    assert _transactions_open(db_url) == []


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_job_taken_back_while_drafting_is_not_stored(
    sessions: sessionmaker[Session], tmp_path: Path, db_url: str, phantom_dir: Path,
) -> None:
    """The lease expires during the model call and the sweeper queues the job again: the
    worker that lost it drops its result; the next attempt drafts it once."""
    settings = worker_settings(tmp_path, db_url)
    job_id = _queued_job(sessions, settings, phantom_dir)

    def lease_lost(_seq: FrameSequence, _prompt: Prompt) -> None:
        with sessions() as session:
            session.execute(update(Job).values(
                lease_until=db_now(session) - timedelta(seconds=1)))
            session.commit()
            [again] = sweep_once(session, settings)
        assert again.row_id == job_id and again.attempts == 1

    assert draft_job(sessions, settings, StandInBackend(before=lease_lost), job_id, 0,
                     lambda _w: None) == "lost"
    with sessions() as session:
        assert session.scalars(select(Draft)).all() == []
        assert session.scalars(select(Delivery)).all() == []
        job = session.get(Job, job_id)
        assert job is not None and job.state == "queued"
    assert draft_job(sessions, settings, StandInBackend(), job_id, 1,
                     lambda _w: None) == "done"
    with sessions() as session:
        assert len(session.scalars(select(Draft)).all()) == 1
