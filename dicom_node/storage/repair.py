"""Index repair at start: a file renamed into the store whose row was never committed.

A crash between the rename and the commit leaves a complete, fsynced file without a row (its
sender got no 0x0000 and will send it again); on SQLite a power cut may also take the last
index commits, which the receivers make without an fsync for exactly this reason. The node
indexes such files at start, so the store and the index agree; the re-send then counts as a
duplicate, not as a new image.
The scan compares names only (one directory walk and one query); headers are read only
for files without a row.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import Instance
from radraft.dicom_node.errors import StoreRefused
from radraft.dicom_node.header.reading import read_stored_header
from radraft.dicom_node.storage.files import InstanceStore
from radraft.dicom_node.storage.index import begin_write, index_instance

log = logging.getLogger(__name__)


@dataclass
class RepairReport:
    studies_checked: int = 0
    indexed: int = 0
    unreadable: int = 0
    tmp_removed: int = 0


def _files_of(study_dir: Path) -> list[Path]:
    files: list[Path] = []
    with os.scandir(study_dir) as series_entries:
        for series in series_entries:
            if series.is_dir():
                with os.scandir(series.path) as entries:
                    files.extend(Path(e.path) for e in entries if e.name.endswith(".dcm"))
    return files


def repair_index(
    store: InstanceStore, sessions: sessionmaker[Session], *, uid_root: str,
) -> RepairReport:
    """Index every stored file that has no Instance row; remove leftover temp files."""
    report = RepairReport(tmp_removed=store.clean_tmp())
    if not store.root.exists():
        return report
    with sessions() as session:
        known = set(session.execute(select(Instance.path)).scalars().all())
    for study_dir in sorted(p for p in store.root.iterdir() if p.is_dir()):
        report.studies_checked += 1
        for path in _files_of(study_dir):
            if str(path) in known:
                continue
            try:
                header = read_stored_header(path)
            except StoreRefused as exc:
                log.error("store file %s cannot be indexed: %s", path, exc)
                report.unreadable += 1
                continue
            with sessions() as session:
                begin_write(session)
                index_instance(
                    session, header, path, path.stat().st_size, calling_aet="",
                    uid_root=uid_root,
                )
                session.commit()
            report.indexed += 1
    if report.indexed or report.tmp_removed:
        log.warning(
            "index repair: %d stored files indexed, %d temp files removed",
            report.indexed, report.tmp_removed,
        )
    return report
