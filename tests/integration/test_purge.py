"""Retention: what `radraft purge` removes, and what it must never remove."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from node_helpers import ct_phase_study
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from radraft.core.db import Delivery, Draft, DraftImage, Instance, Job, Study
from radraft.core.settings import RetentionSettings
from radraft.dicom_node.header.reading import read_stored_header
from radraft.dicom_node.storage.files import InstanceStore
from radraft.dicom_node.storage.index import index_instance
from radraft.dicom_node.storage.purge import purge
from radraft.worker.cli.main import app

OLD = datetime.now(UTC) - timedelta(days=90)
RECENT = datetime.now(UTC) - timedelta(days=1)


def _study(tmp_path: Path, sessions: sessionmaker[Session], store: InstanceStore, name: str,
           *, announced: bool = True, source: str = "received") -> str:
    files = ct_phase_study(tmp_path / name, phases=("A",), slices=2)
    with sessions() as session:
        for path in files:
            header = read_stored_header(path)
            dest = store.path_for(header.study_uid, header.series_uid, header.sop_uid)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
            index_instance(session, header, dest, dest.stat().st_size, calling_aet="CT",
                           uid_root="2.25")
        session.commit()
        session.execute(update(Study).where(Study.study_uid == header.study_uid).values(
            source=source, last_received_at=OLD, last_image_at=OLD,
            announced_at=OLD if announced else None,
            announced_image_count=Study.image_count if announced else None,
        ))
        session.commit()
    return header.study_uid


def _job(sessions: sessionmaker[Session], study_uid: str, state: str,
         delivery: str | None = None, delivered_at: datetime | None = None) -> None:
    with sessions() as session:
        job = Job(study_uid=study_uid, version="v", profile="p", state=state, created_at=OLD)
        session.add(job)
        session.flush()
        if delivery is not None:
            draft = Draft(job_id=job.id, study_uid=study_uid, version="v", profile="p",
                          report={}, created_at=OLD)
            session.add(draft)
            session.flush()
            session.add(DraftImage(draft_id=draft.id, kind="sheet", png=b"PNG", created_at=OLD))
            session.add(Delivery(
                draft_id=draft.id, destination="pacs", kind="dicom", payload_kind="sr",
                payload=b"SR-BYTES", message_id="1.2", state=delivery, created_at=OLD,
                delivered_at=delivered_at,
            ))
        session.commit()


def test_purge_follows_the_policy(tmp_path: Path, sessions: sessionmaker[Session]) -> None:
    store = InstanceStore(tmp_path / "data" / "dicom")
    store.prepare()
    done = _study(tmp_path, sessions, store, "done")
    _job(sessions, done, "done", delivery="delivered", delivered_at=OLD)
    queued = _study(tmp_path, sessions, store, "queued")
    _job(sessions, queued, "queued")
    waiting = _study(tmp_path, sessions, store, "waiting", announced=False)
    pending = _study(tmp_path, sessions, store, "pending")
    _job(sessions, pending, "done", delivery="pending")
    ignored = _study(tmp_path, sessions, store, "ignored")  # rules said ignore: no job
    prior = _study(tmp_path, sessions, store, "prior", source="prior")
    recent_delivery = _study(tmp_path, sessions, store, "recent")
    _job(sessions, recent_delivery, "done", delivery="delivered", delivered_at=RECENT)
    policy = RetentionSettings(studies_days=30, priors_days=7, outbox_days=30)

    dry = purge(sessions, store, policy, dry_run=True)
    assert set(dry.studies) == {done, ignored, recent_delivery}
    assert dry.priors == [prior] and dry.outbox_payloads == 1
    assert dry.draft_images == 3  # old drafts' pictures go with the outbox policy
    with sessions() as session:
        assert len(session.scalars(select(Study)).all()) == 7  # nothing removed yet

    report = purge(sessions, store, policy)
    assert set(report.studies) == {done, ignored, recent_delivery} and report.priors == [prior]
    assert report.files == 8
    with sessions() as session:
        left = set(session.scalars(select(Study.study_uid)))
        assert left == {queued, waiting, pending}
        for row in session.scalars(select(Instance)):
            assert Path(row.path).is_file()
        payloads = {d.delivered_at is not None and d.delivered_at < RECENT - timedelta(days=1):
                    d.payload for d in session.scalars(select(Delivery).where(
                        Delivery.state == "delivered"))}
        assert payloads == {True: b"", False: b"SR-BYTES"}
        assert session.scalars(select(DraftImage)).all() == []
    remaining_dirs = {p.name for p in store.root.iterdir()}
    assert remaining_dirs == {queued, waiting, pending}


def test_purge_command_dry_run(tmp_path: Path, db_url: str) -> None:
    config = tmp_path / "radraft.yaml"
    config.write_text(f"data_dir: {tmp_path / 'data'}\ndatabase_url: {db_url}\n")
    result = CliRunner().invoke(app, ["--config", str(config), "purge", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "would remove: 0 studies, 0 prior studies" in result.output
