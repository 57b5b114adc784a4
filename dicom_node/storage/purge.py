"""Retention (`radraft purge`): remove what the policy allows, never a study awaiting its draft.

Policy (`retention.*` days):
- a received study whose last instance is older than `studies_days`, that was announced at its
  current version, has no job still queued or running and no delivery still pending;
- a prior study (fetched from the PACS) older than `priors_days`;
- the payload bytes of outbox rows delivered more than `outbox_days` ago (the row stays), and
  the console's pictures (contact sheet, key frames) of drafts older than `outbox_days`.
Files go first, rows after: a crash in between leaves rows whose files are gone, and the next
purge finishes them; it never leaves an unindexed file that index repair would resurrect.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, exists, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from radraft.core import audit
from radraft.core.db import (
    Delivery,
    Draft,
    DraftImage,
    Instance,
    Job,
    Series,
    Study,
    db_now,
    make_engine,
    make_sessionmaker,
)
from radraft.core.settings import RetentionSettings, Settings
from radraft.dicom_node.storage.files import InstanceStore, fsync_dir
from radraft.dicom_node.storage.index import begin_write

log = logging.getLogger(__name__)

ACTIVE_JOB_STATES = ("queued", "running")


@dataclass
class PurgeReport:
    studies: list[str] = field(default_factory=list)
    priors: list[str] = field(default_factory=list)
    files: int = 0
    bytes_freed: int = 0
    outbox_payloads: int = 0
    draft_images: int = 0


def purgeable_studies(session: Session, policy: RetentionSettings, now: datetime) -> list[Study]:
    """Studies the policy allows to remove now (see the module docstring)."""
    awaiting_job = exists().where(
        Job.study_uid == Study.study_uid, Job.state.in_(ACTIVE_JOB_STATES)
    )
    pending_delivery = exists().where(
        Draft.study_uid == Study.study_uid, Delivery.draft_id == Draft.id,
        Delivery.state == "pending",
    )
    received = (
        (Study.source == "received")
        & (Study.last_received_at < now - timedelta(days=policy.studies_days))
        # Announced with all its images: not waiting for stability or for a re-draft.
        & (Study.announced_image_count == Study.image_count)
        & ~awaiting_job & ~pending_delivery
    )
    prior = (Study.source == "prior") & (
        Study.last_received_at < now - timedelta(days=policy.priors_days)
    )
    return list(session.scalars(select(Study).where(or_(received, prior)).order_by(Study.id)))


def _remove_files(session: Session, study: Study, store: InstanceStore) -> tuple[int, int]:
    """Delete the study's indexed files, then its folders if they are empty.

    Only indexed files go: a file renamed in by a concurrent C-STORE (its row not yet
    committed) stays, and so does its folder.
    """
    files = freed = 0
    folders: set[Path] = set()
    for path_text, size in session.execute(
        select(Instance.path, Instance.size).where(Instance.study_id == study.id)
    ):
        path = Path(path_text)
        folders.add(path.parent)
        if path.exists():
            path.unlink()
            files += 1
            freed += size
    for folder in sorted(folders | {p.parent for p in folders}, key=lambda p: -len(p.parts)):
        if folder.is_relative_to(store.root) and folder != store.root:
            with contextlib.suppress(OSError):  # not empty: something new arrived
                folder.rmdir()
                store.forget_dir(folder)
    fsync_dir(store.root)
    return files, freed


def purge(
    sessions: sessionmaker[Session], store: InstanceStore, policy: RetentionSettings,
    *, dry_run: bool = False,
) -> PurgeReport:
    """Apply the retention policy; `dry_run` only reports what would go."""
    report = PurgeReport()
    with sessions() as session:
        now = db_now(session)
        due = purgeable_studies(session, policy, now)
        candidates = [(s.id, s.study_uid, s.source) for s in due]
    for study_id, study_uid, source in candidates:
        listed = report.priors if source == "prior" else report.studies
        if dry_run:
            listed.append(study_uid)
            continue
        with sessions() as session:
            begin_write(session)
            study = session.get(Study, study_id, with_for_update=True)
            if study is None or study.last_received_at >= now - timedelta(
                days=policy.priors_days if source == "prior" else policy.studies_days
            ):
                continue  # gone, or it received something since it was selected
            files, freed = _remove_files(session, study, store)
            report.files += files
            report.bytes_freed += freed
            session.execute(delete(Instance).where(Instance.study_id == study_id))
            session.execute(delete(Series).where(Series.study_id == study_id))
            session.execute(delete(Study).where(Study.id == study_id))
            audit.record(
                session, "study.purged", study_uid=study_uid, source=source, files=files,
                bytes=freed,
            )
            session.commit()
        listed.append(study_uid)
    with sessions() as session:
        old = now - timedelta(days=policy.outbox_days)
        condition = (
            (Delivery.state == "delivered") & (Delivery.delivered_at < old)
            & (Delivery.payload != b"")
        )
        report.outbox_payloads = len(session.scalars(select(Delivery.id).where(condition)).all())
        if not dry_run and report.outbox_payloads:
            session.execute(update(Delivery).where(condition).values(payload=b""))
        # The pictures are PHI like the payloads: they go with the same policy.
        pictures = DraftImage.draft_id.in_(select(Draft.id).where(Draft.created_at < old))
        report.draft_images = len(session.scalars(select(DraftImage.id).where(pictures)).all())
        if not dry_run and report.draft_images:
            session.execute(delete(DraftImage).where(pictures))
        session.commit()
    log.info(
        "purge: %d studies, %d priors, %d files, %d bytes, %d outbox payloads, %d pictures%s",
        len(report.studies), len(report.priors), report.files, report.bytes_freed,
        report.outbox_payloads, report.draft_images, " (dry run)" if dry_run else "",
    )
    return report


def purge_for_settings(settings: Settings) -> int:
    """Run the policy with its own engine (the node's disk guard); returns bytes freed."""
    engine = make_engine(settings.database_url)
    try:
        report = purge(
            make_sessionmaker(engine), InstanceStore(settings.dicom_dir), settings.retention
        )
    finally:
        engine.dispose()
    return report.bytes_freed
