from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import Job, db_now, make_engine
from radraft.core.db.migrate import schema_drift


def test_migrations_match_models(engine: Engine) -> None:
    assert schema_drift(engine) == []


def test_db_clock_is_aware_utc_with_subseconds(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        first = db_now(s)
        second = db_now(s)
    assert first.utcoffset() == timedelta(0)
    assert second >= first


def test_job_key_is_unique(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        now = db_now(s)
        s.add(Job(study_uid="1.2.3", version="v1", profile="ct", created_at=now))
        s.commit()
    with sessions() as s, pytest.raises(IntegrityError):
        s.add(Job(study_uid="1.2.3", version="v1", profile="ct", created_at=now))
        s.commit()
    with sessions() as s:
        job = s.scalars(select(Job)).one()
        assert job.created_at == now
        assert job.created_at.tzinfo is not None


def test_only_the_rebuildable_index_commits_without_fsync_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'radraft.db'}"
    for fsync_commits, expected in ((True, 2), (False, 1)):  # FULL, NORMAL
        engine = make_engine(url, fsync_commits=fsync_commits)
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == expected
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        engine.dispose()
