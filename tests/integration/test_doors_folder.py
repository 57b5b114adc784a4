"""Folder destination: a sender's Study Instance UID never builds a path outside the outbox
(issue 25, item 2). Before the fix `../..` and `/tmp/elsewhere` wrote the outputs there."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.worker import worker_settings
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import Delivery, Draft, Job, db_now
from radraft.core.settings import Settings
from radraft.worker.outbox import OutboxItem, add_deliveries, deliver


def _settings(tmp: Path, db_url: str) -> Settings:
    return worker_settings(tmp, db_url, destinations={
        "folder": {"kind": "folder", "path": str(tmp / "box" / "outbox")},
    })


def _rows(sessions: sessionmaker[Session], settings: Settings, study_uid: str) -> list[int]:
    with sessions() as session:
        now = db_now(session)
        job = Job(study_uid=study_uid, version="v1", profile="ct-generic", state="done",
                  created_at=now)
        session.add(job)
        session.flush()
        draft = Draft(job_id=job.id, study_uid=study_uid, version="v1", profile="ct-generic",
                      report={}, created_at=now)
        rows = add_deliveries(session, settings, draft, [OutboxItem("text", b"PHI", "T1")],
                              ["folder"], now)
        session.commit()
        return [row.id for row in rows]


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("study_uid", ["../..", "..", "/tmp/elsewhere", "1.2/../../x",
                                       "1.2.3\n", "1.02.3"])
def test_hostile_study_uid_is_refused_not_written(
    sessions: sessionmaker[Session], tmp_path: Path, db_url: str, study_uid: str,
) -> None:
    settings = _settings(tmp_path, db_url)
    elsewhere = Path("/tmp/elsewhere")
    before = _files(elsewhere) if elsewhere.exists() else []
    [row_id] = _rows(sessions, settings, study_uid)
    assert deliver(sessions, settings, row_id, 0) == "failed"
    with sessions() as session:
        row = session.get(Delivery, row_id)
        assert row is not None and "not a valid DICOM UID" in row.last_error
    # Nothing was written anywhere under the test folder, nor in /tmp/elsewhere.
    assert [p for p in _files(tmp_path) if p.suffix == ".txt"] == []
    assert (_files(elsewhere) if elsewhere.exists() else []) == before


def test_valid_study_uid_still_names_the_folder(
    sessions: sessionmaker[Session], tmp_path: Path, db_url: str,
) -> None:
    settings = _settings(tmp_path, db_url)
    [row_id] = _rows(sessions, settings, "1.2.840.10008.0.1")
    assert deliver(sessions, settings, row_id, 0) == "delivered"
    assert (tmp_path / "box" / "outbox" / "1.2.840.10008.0.1" / "text-T1.txt").read_bytes() \
        == b"PHI"
