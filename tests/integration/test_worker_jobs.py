"""Jobs from stable studies, attempts-token claims, the sweeper (SQLite and PostgreSQL)."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import pytest
from helpers.worker import index_folder, stable_of, worker_settings
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import AuditEvent, Job, Order, RuleDecision, db_now
from radraft.core.types import Priority
from radraft.dicom_node.rules import RuleOutcome
from radraft.reporting.phantom import write_phantom_study
from radraft.worker.backoff import backoff_delay_s
from radraft.worker.enqueue import WakeUp
from radraft.worker.jobs import claim_job, create_jobs
from radraft.worker.sweeper import sweep_once

DRAFT = RuleOutcome("abdomen", "draft", profile="ct-generic", priority=Priority.STAT,
                    destinations=("folder",))


@pytest.fixture(scope="module")
def phantom_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("study")
    write_phantom_study(out, slices=3, size=32, phases=["portal venous"])
    return out


def test_backoff_grows_with_jitter_under_the_cap() -> None:
    rng = random.Random(1)
    delays = [backoff_delay_s(n, base_s=10, cap_s=100, rng=rng) for n in range(1, 8)]
    assert 5 <= delays[0] <= 10
    assert 10 <= delays[1] <= 20
    assert all(50 <= d <= 100 for d in delays[4:])
    assert len({round(d, 6) for d in delays[4:]}) == 3  # jittered, not identical


def test_same_version_twice_creates_one_job(
    sessions: sessionmaker[Session], tmp_path: Path, db_url: str, phantom_dir: Path,
) -> None:
    settings = worker_settings(tmp_path, db_url)
    with sessions() as session:
        study = index_folder(session, phantom_dir)
        first = create_jobs(session, settings, stable_of(study), [DRAFT])
        session.commit()
        again = create_jobs(session, settings, stable_of(study), [DRAFT])
        session.commit()
        assert first == [WakeUp("job", first[0].row_id, 0, Priority.STAT)]
        assert again == []
        assert len(session.scalars(select(Job)).all()) == 1
        assert len(session.scalars(select(RuleDecision)).all()) == 1
        # A new version supersedes the queued old one and gets its own job.
        newer = create_jobs(session, settings, stable_of(study, "v2"), [DRAFT])
        session.commit()
        states = dict(session.execute(select(Job.version, Job.state)).all())  # type: ignore[arg-type]
        assert len(newer) == 1
        assert states == {"v1": "superseded", "v2": "queued"}


def test_cancelled_order_creates_no_job(
    sessions: sessionmaker[Session], tmp_path: Path, db_url: str, phantom_dir: Path,
) -> None:
    settings = worker_settings(tmp_path, db_url)
    with sessions() as session:
        study = index_folder(session, phantom_dir, accession="ACC-9")
        now = db_now(session)
        session.add(Order(accession="ACC-9", status="cancelled", received_at=now,
                          updated_at=now))
        session.commit()
        assert create_jobs(session, settings, stable_of(study), [DRAFT]) == []
        session.commit()
        assert session.scalars(select(Job)).all() == []
        kinds = session.scalars(select(AuditEvent.kind)).all()
        assert "job.skipped" in kinds


def test_claim_once_per_attempt(
    sessions: sessionmaker[Session], tmp_path: Path, db_url: str, phantom_dir: Path,
) -> None:
    settings = worker_settings(tmp_path, db_url)
    with sessions() as session:
        study = index_folder(session, phantom_dir)
        [wake] = create_jobs(session, settings, stable_of(study), [DRAFT])
        session.commit()
        job = claim_job(session, wake.row_id, 0, worker="w1", lease_s=60)
        assert job is not None and job.state == "running" and job.attempts == 1
        assert claim_job(session, wake.row_id, 0, worker="w2", lease_s=60) is None


def test_sweeper_resends_lost_wakeups_and_takes_back_leases(
    sessions: sessionmaker[Session], tmp_path: Path, db_url: str, phantom_dir: Path,
) -> None:
    settings = worker_settings(tmp_path, db_url, jobs={"max_attempts": 2})
    with sessions() as session:
        study = index_folder(session, phantom_dir)
        [wake] = create_jobs(session, settings, stable_of(study), [DRAFT])
        session.commit()
        assert sweep_once(session, settings) == []  # its wake-up is on the way
        past = db_now(session) - timedelta(seconds=1)
        session.execute(update(Job).values(next_attempt_at=past))
        session.commit()
        assert sweep_once(session, settings) == [WakeUp("job", wake.row_id, 0, Priority.STAT)]
        assert sweep_once(session, settings) == []  # re-sent once, not every pass
        # Claimed twice by workers that died: queued again once, then failed at the cap.
        for attempt in (0, 1):
            assert claim_job(session, wake.row_id, attempt, worker="w", lease_s=60)
            session.execute(update(Job).values(lease_until=db_now(session) - timedelta(1)))
            session.commit()
            wakes = sweep_once(session, settings)
        job = session.get(Job, wake.row_id, populate_existing=True)
        assert job is not None
        assert job.state == "failed" and job.attempts == 2
        assert "attempts exhausted" in job.last_error
        assert wakes == []
