"""The C-STORE / C-ECHO handlers: small, explicit statuses, errors mapped in ONE place."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import Executor, Future, wait
from pathlib import Path
from typing import Any

from pynetdicom import events as evt
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from radraft.core.settings import DicomSettings
from radraft.dicom_node.assoc_log import AssociationLog
from radraft.dicom_node.errors import (
    STATUS_PROCESSING_FAILURE,
    STATUS_SUCCESS,
    OutOfSpace,
    StoreRefused,
)
from radraft.dicom_node.header.inflate import InflateLimits
from radraft.dicom_node.header.reading import DEFAULT_LIMITS, InstanceHeader, read_header
from radraft.dicom_node.storage.disk import DiskGuard
from radraft.dicom_node.storage.files import InstanceStore, fsync_file
from radraft.dicom_node.storage.index import IndexCache, IndexResult, begin_write, index_instance
from radraft.dicom_node.storage.space import SpaceWatch

log = logging.getLogger(__name__)


class StoreHandler:
    """Stores one C-STORE request durably; bound to EVT_C_STORE (chunked-to-disk mode).

    Order, every time: header check -> fsync file -> rename -> fsync dir -> commit the
    index row -> return 0x0000 (pynetdicom sends the response after we return). The
    file's fsync was started when its last fragment arrived (`EarlySync`); the placement
    (fsync wait, rename, directory fsync) runs on `placer` while this thread executes the
    index statements, and the transaction commits only once the placement is done.
    """

    def __init__(
        self, store: InstanceStore, engine: Engine, disk: DiskGuard,
        *, uid_root: str, placer: Executor, synced: Callable[[Path], None] = fsync_file,
        space: SpaceWatch | None = None, limits: DicomSettings | None = None,
    ) -> None:
        self.store = store
        self.engine = engine
        self.disk = disk
        self.uid_root = uid_root
        self.placer = placer  # places files while the index statements run
        self.synced = synced  # makes the received file durable (EarlySync.wait in the node)
        self.space = space  # free disk measured while data arrived
        self.inflate_limits = DEFAULT_LIMITS if limits is None else InflateLimits(
            limits.max_inflated_bytes, limits.max_inflate_ratio)
        self.assoc_log = AssociationLog()
        self.cache = IndexCache()

    def __call__(self, event: evt.Event) -> int:
        """Status for one request; no exception may leave (it would end the association)."""
        status = self._status(event)
        self.assoc_log.tally(event.assoc, status)
        return status

    def _status(self, event: evt.Event) -> int:
        request: Any = event.request
        sop_uid = str(request.AffectedSOPInstanceUID or "")
        calling = str(event.assoc.requestor.ae_title).strip()
        try:
            if self.space is not None and self.space.take_refusal(event.assoc):
                raise OutOfSpace("free disk fell below dicom.min_free_bytes while it arrived")
            self.store_one(event.dataset_path, request, calling)
        except StoreRefused as exc:
            log.warning(
                "C-STORE %s from %s refused 0x%04X: %s", sop_uid, calling, exc.status, exc
            )
            return exc.status
        except (OSError, SQLAlchemyError) as exc:
            log.error("C-STORE %s from %s failed: %s", sop_uid, calling, exc)
            return STATUS_PROCESSING_FAILURE
        except Exception:
            log.exception("C-STORE %s from %s: unexpected error", sop_uid, calling)
            return STATUS_PROCESSING_FAILURE
        return STATUS_SUCCESS

    def _index(
        self, header: InstanceHeader, dest: Path, size: int, calling_aet: str,
        placed: Future[None],
    ) -> IndexResult:
        # A Core connection, not a Session: nothing here needs the ORM's unit of work.
        with self.engine.connect() as connection:
            begin_write(connection)
            result = index_instance(
                connection, header, dest, size, calling_aet=calling_aet,
                uid_root=self.uid_root, cache=self.cache,
            )
            placed.result()  # a failed placement raises here: the rows roll back
            connection.commit()
        return result

    def store_one(self, received: Path, request: Any, calling_aet: str) -> None:
        size = os.path.getsize(received)
        if not self.disk.has_room(size):
            raise OutOfSpace("free disk below dicom.min_free_bytes after purging")
        header = read_header(
            received, affected_class=str(request.AffectedSOPClassUID or ""),
            affected_instance=str(request.AffectedSOPInstanceUID or ""),
            limits=self.inflate_limits,
        )
        dest = self.store.path_for(header.study_uid, header.series_uid, header.sop_uid)
        placed = self.placer.submit(self.store.place, received, dest, synced=self.synced)
        try:
            self._index(header, dest, size, calling_aet, placed)
        except IntegrityError:
            # A cached study/series id went stale (purged meanwhile, or a row another
            # receiving process created): forget the cache and index once more.
            self.cache.clear()
            self._index(header, dest, size, calling_aet, placed)
        finally:
            wait([placed])  # never answer (even a failure) while the file is still moving


def handle_echo(event: evt.Event) -> int:
    return STATUS_SUCCESS
