"""STOW-RS receive (PS3.18 10.5): the parts of a request (`stow_upload`) stored exactly as
C-STORE stores them.

Same door, same rules as the C-STORE handler (`scp.StoreHandler`): header check, fsync,
rename, directory fsync, index commit, and only then is the instance listed as stored; the
same duplicate rule (same SOP Instance UID: last copy wins, version unchanged). Parts stored
before a dropped connection stay stored (each instance stands on its own, as on an
association that aborts after some C-STOREs); nothing was acknowledged, so the sender sends
them again and the copy replaces itself.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from pydicom.filereader import read_file_meta_info
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from radraft.core.db import make_engine
from radraft.core.settings import Settings
from radraft.dicom_node.errors import (
    STATUS_CANNOT_UNDERSTAND,
    STATUS_PROCESSING_FAILURE,
    OutOfSpace,
    StoreRefused,
)
from radraft.dicom_node.header.reading import InstanceHeader, read_header, read_header_as_sent
from radraft.dicom_node.scp import StoreHandler
from radraft.dicom_node.storage import InstanceStore, fsync_dir
from radraft.dicom_node.storage.disk import DiskGuard
from radraft.dicom_node.storage.index import begin_write, index_instance
from radraft.dicom_node.storage.purge import purge_for_settings
from radraft.dicom_node.stow_upload import StowOutcome, StowUpload, boundary_of

log = logging.getLogger(__name__)


def affected_uids(path: Path) -> tuple[str, str]:
    """What stands in for a C-STORE command's Affected SOP Class and Instance UIDs: the
    Part 10 file meta's Media Storage UIDs, or, where the meta leaves one out, the dataset's
    own (the C-STORE path stores such a file too: storescu sends its dataset)."""
    meta = read_file_meta_info(path)
    sop_class = str(meta.get("MediaStorageSOPClassUID", "") or "")
    sop_uid = str(meta.get("MediaStorageSOPInstanceUID", "") or "")
    if not sop_class or not sop_uid:
        header = read_header_as_sent(path)
        sop_class, sop_uid = sop_class or header.sop_class_uid, sop_uid or header.sop_uid
    return sop_class, sop_uid


@dataclass(slots=True)
class _Placed:
    """A part whose header passed and whose file is moving into the store."""

    header: InstanceHeader
    dest: Path
    size: int
    placed: Future[None]


class StowReceiver:
    """Stores finished parts as the C-STORE handler does (same checks, paths, rows, order:
    fsync, rename, directory fsync, then the index commit), a batch of parts at a time: one
    index transaction for the batch, where C-STORE has one per instance (nothing is answered
    before the whole request is stored, so a batch commit promises no less)."""

    def __init__(self, handler: StoreHandler, tmp_dir: Path) -> None:
        self.handler = handler
        self.tmp_dir = tmp_dir

    def store(self, part_path: Path, sender: str) -> StowOutcome:
        """Store one finished part; never raises for what the peer sent."""
        [outcome] = self.store_batch([part_path], sender)
        return outcome

    def store_batch(self, paths: list[Path], sender: str) -> list[StowOutcome]:
        outcomes: list[StowOutcome] = []
        placed: list[_Placed] = []
        for path in paths:
            checked = self._check(path, sender)
            if isinstance(checked, StowOutcome):
                path.unlink(missing_ok=True)
                outcomes.append(checked)
                continue
            handler = self.handler
            dest = handler.store.path_for(checked.study_uid, checked.series_uid, checked.sop_uid)
            size = path.stat().st_size  # before the placement moves it
            # Directories are fsynced once per batch, before its commit (_index_all).
            future = handler.placer.submit(handler.store.place, path, dest, sync_dir=False)
            placed.append(_Placed(checked, dest, size, future))
        if placed:
            outcomes += self._index(placed, sender)
        for path in paths:
            path.unlink(missing_ok=True)  # a refused or failed part never moved
        return outcomes

    def _check(self, path: Path, sender: str) -> InstanceHeader | StowOutcome:
        try:
            sop_class, sop_uid = affected_uids(path)
        except Exception as exc:  # noqa: BLE001 - untrusted bytes: any parse error is 0xC000
            return StowOutcome("", "", STATUS_CANNOT_UNDERSTAND, f"not a DICOM Part 10 file: {exc}")
        try:
            if not self.handler.disk.has_room(path.stat().st_size):
                raise OutOfSpace("free disk below dicom.min_free_bytes after purging")
            return read_header(path, affected_class=sop_class, affected_instance=sop_uid)
        except StoreRefused as exc:
            log.warning("STOW-RS %s from %s refused 0x%04X: %s", sop_uid, sender, exc.status,
                        exc)
            return StowOutcome(sop_class, sop_uid, exc.status, str(exc))

    def _index(self, placed: list[_Placed], sender: str) -> list[StowOutcome]:
        handler = self.handler
        try:
            try:
                self._index_all(placed, sender)
            except IntegrityError:
                handler.cache.clear()  # a cached row id went stale (purge): once more
                self._index_all(placed, sender)
        except (OSError, SQLAlchemyError) as exc:
            # One placement or statement failed and the batch rolled back: settle each part
            # on its own, so one bad part costs only itself.
            log.warning("STOW-RS batch of %d from %s: %s; storing one by one", len(placed),
                        sender, exc)
            return [self._index_one(p, sender) for p in placed]
        return [StowOutcome(p.header.sop_class_uid, p.header.sop_uid, 0) for p in placed]

    def _index_all(self, placed: list[_Placed], sender: str) -> None:
        handler = self.handler
        with handler.engine.connect() as connection:
            begin_write(connection)
            for part in placed:
                index_instance(connection, part.header, part.dest, part.size,
                               calling_aet=sender, uid_root=handler.uid_root,
                               cache=handler.cache)
            wait([p.placed for p in placed])
            for part in placed:
                part.placed.result()  # a failed placement raises here: nothing commits
            for folder in {part.dest.parent for part in placed}:
                fsync_dir(folder)  # the renames are durable before the rows say "stored"
            connection.commit()

    def _index_one(self, part: _Placed, sender: str) -> StowOutcome:
        header = part.header
        try:
            part.placed.result()
            self._index_all([part], sender)
        except (OSError, SQLAlchemyError) as exc:
            log.error("STOW-RS %s from %s failed: %s", header.sop_uid, sender, exc)
            return StowOutcome(header.sop_class_uid, header.sop_uid, STATUS_PROCESSING_FAILURE,
                               "processing failure")
        return StowOutcome(header.sop_class_uid, header.sop_uid, 0)


def new_upload(receiver: StowReceiver, content_type: str, *, max_instance_bytes: int,
               max_request_bytes: int, room_for: Callable[[int], bool]) -> StowUpload:
    os.makedirs(receiver.tmp_dir, exist_ok=True)
    return StowUpload(boundary_of(content_type), receiver.tmp_dir, max_instance_bytes,
                      max_request_bytes, room_for)


def stow_receiver_for(settings: Settings) -> StowReceiver:
    """A receiver writing where the node writes (`<data_dir>/dicom`, temp files in
    `<data_dir>/tmp`), with its own index engine and placing threads."""
    store = InstanceStore(settings.dicom_dir)
    store.prepare()
    disk = DiskGuard(settings.data_dir, settings.dicom.min_free_bytes,
                     lambda: purge_for_settings(settings))
    # As the C-STORE receiver's index: SQLite commits without fsync, because every file is
    # fsynced before its row and `repair` indexes such files again at the node's start.
    engine = make_engine(settings.database_url, pool_size=8, fsync_commits=False)
    handler = StoreHandler(
        store, engine, disk,
        uid_root=settings.site.uid_root,
        placer=ThreadPoolExecutor(8, thread_name_prefix="stow-placer"),
    )
    return StowReceiver(handler, store.tmp_dir)
