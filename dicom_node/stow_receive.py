"""STOW-RS receive (PS3.18 10.5): instances POSTed as multipart/related application/dicom,
stored exactly as C-STORE stores them.

Same door, same rules as the C-STORE handler (`scp.StoreHandler.store_one`): header check,
fsync, rename, directory fsync, index commit, and only then is the instance listed as stored;
the same duplicate rule (same SOP Instance UID: last copy wins, version unchanged). The body is
parsed as it streams in, each part written to its own O_EXCL file in the store's temporary
folder: no upload is held in memory, and a part cut off by a dropped connection is removed
without ever being stored. Parts stored before a drop stay stored (each instance stands on
its own, as on an association that aborts after some C-STOREs); nothing was acknowledged, so
the sender sends them again and the copy replaces itself.

Answer (PS3.18 table 10.5.3-1): 200 every instance stored, 202 some failed, 409 all failed;
the body is DICOM JSON with Referenced SOP Sequence and Failed SOP Sequence (Failure Reason =
the C-STORE status the node would have answered).
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.filereader import read_file_meta_info
from python_multipart.multipart import MultipartParser
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from radraft.core.db import make_engine
from radraft.core.settings import Settings
from radraft.dicom_node.errors import (
    STATUS_CANNOT_UNDERSTAND,
    STATUS_OUT_OF_RESOURCES,
    STATUS_PROCESSING_FAILURE,
    OutOfSpace,
    StoreRefused,
)
from radraft.dicom_node.header.reading import InstanceHeader, read_header, read_header_as_sent
from radraft.dicom_node.scp import StoreHandler
from radraft.dicom_node.storage import InstanceStore
from radraft.dicom_node.storage.disk import DiskGuard
from radraft.dicom_node.storage.index import begin_write, index_instance
from radraft.dicom_node.storage.purge import purge_for_settings

log = logging.getLogger(__name__)

# (0008,1198) Failed SOP Sequence, (0008,1199) Referenced SOP Sequence and their items.
_FAILED, _REFERENCED = "00081198", "00081199"
_CLASS, _INSTANCE, _REASON = "00081150", "00081155", "00081197"

ROOM_CHECK_BYTES = 8 << 20
_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_TYPE = re.compile(r'type="?([^";]+)"?', re.IGNORECASE)


class StowRequestError(Exception):
    """The request as a whole is refused; `http_status` says why (400, 413, 415)."""

    def __init__(self, http_status: int, reason: str) -> None:
        super().__init__(reason)
        self.http_status = http_status
        self.reason = reason


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


def boundary_of(content_type: str) -> str:
    """The boundary of a `multipart/related; type="application/dicom"` body, or 415."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "multipart/related":
        raise StowRequestError(415, f"Content-Type {media or 'missing'}: "
                                    "expected multipart/related; type=\"application/dicom\"")
    declared = _TYPE.search(content_type)
    if declared and declared.group(1).strip().lower() != "application/dicom":
        raise StowRequestError(415, f"multipart type {declared.group(1)}: only "
                                    "application/dicom instances are accepted")
    found = _BOUNDARY.search(content_type)
    # RFC 2046 allows 1 to 70 characters; Orthanc sends 73 (two UUIDs): be lenient, bounded.
    if not found or not 0 < len(found.group(1)) <= 200:
        raise StowRequestError(400, "multipart/related without a valid boundary")
    return found.group(1)


@dataclass(slots=True)
class StowOutcome:
    """One instance's fate: `status` 0 when stored, else the C-STORE status of its refusal."""

    sop_class: str
    sop_uid: str
    status: int
    reason: str = ""


@dataclass(slots=True)
class _Part:
    path: Path
    handle: Any
    size: int = 0
    content_type: str = ""


@dataclass
class StowUpload:
    """Feeds one request's body to a streaming multipart parser; finished parts queue in
    `ready` (their files complete), to be stored by `StowReceiver.store`."""

    boundary: str
    tmp_dir: Path
    max_instance_bytes: int
    max_request_bytes: int
    room_for: Callable[[int], bool]
    ready: list[_Part] = field(default_factory=list)
    outcomes: list[StowOutcome] = field(default_factory=list)
    received: int = 0
    parts: int = 0
    _current: _Part | None = None
    _header_field: bytes = b""
    _header_value: bytes = b""
    _failed_part: StowOutcome | None = None
    _room_checked_at: int = -ROOM_CHECK_BYTES

    def __post_init__(self) -> None:
        self._parser = MultipartParser(self.boundary.encode("latin-1"), {
            "on_part_begin": self._begin, "on_part_data": self._data,
            "on_part_end": self._end, "on_header_field": self._field,
            "on_header_value": self._value, "on_header_end": self._header_end,
        })

    # -- parser callbacks -----------------------------------------------------------------
    def _begin(self) -> None:
        self.parts += 1
        path = self.tmp_dir / f"stow-{uuid.uuid4().hex}.part"
        handle = open(path, "xb")  # noqa: SIM115 - closed in _end or discard()
        self._current = _Part(path, handle)
        self._failed_part = None

    def _field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if self._current is not None and self._header_field.strip().lower() == b"content-type":
            self._current.content_type = self._header_value.decode("latin-1").strip().lower()
        self._header_field = self._header_value = b""

    def _data(self, data: bytes, start: int, end: int) -> None:
        part = self._current
        if part is None or part.handle is None:
            return
        part.size += end - start
        if part.size > self.max_instance_bytes:
            self._refuse_current(StowOutcome("", "", STATUS_OUT_OF_RESOURCES,
                                             "instance over dicomweb.max_instance_bytes"))
            return
        part.handle.write(data[start:end])

    def _end(self) -> None:
        part, self._current = self._current, None
        if part is None or part.handle is None:
            if self._failed_part is not None:
                self.outcomes.append(self._failed_part)
            return
        part.handle.close()
        part.handle = None
        media = part.content_type.split(";", 1)[0].strip()
        if media not in ("", "application/dicom"):
            part.path.unlink(missing_ok=True)
            self.outcomes.append(StowOutcome("", "", STATUS_CANNOT_UNDERSTAND,
                                             f"part of type {media}: not application/dicom"))
            return
        self.ready.append(part)

    def _refuse_current(self, outcome: StowOutcome) -> None:
        part = self._current
        if part is not None and part.handle is not None:
            part.handle.close()
            part.handle = None
            part.path.unlink(missing_ok=True)
        self._failed_part = outcome

    # -- feeding --------------------------------------------------------------------------
    def feed(self, chunk: bytes) -> None:
        self.received += len(chunk)
        if self.received > self.max_request_bytes:
            raise StowRequestError(413, "request over dicomweb.max_request_bytes")
        # Free space is checked as data arrives (not only once a part is whole), every
        # ROOM_CHECK_BYTES: a statvfs per 64 KiB chunk would cost more than the write.
        if self.received - self._room_checked_at >= ROOM_CHECK_BYTES:
            self._room_checked_at = self.received
            if not self.room_for(ROOM_CHECK_BYTES):
                raise StowRequestError(503, "free disk below dicom.min_free_bytes")
        try:
            self._parser.write(chunk)
        except Exception as exc:  # python-multipart raises its own types on bad framing
            raise StowRequestError(400, f"malformed multipart body: {exc}") from exc

    def finish(self) -> None:
        try:
            self._parser.finalize()
        except Exception as exc:
            raise StowRequestError(400, f"malformed multipart body: {exc}") from exc
        if self._current is not None:
            raise StowRequestError(400, "multipart body ends inside a part")
        if self.parts == 0:
            raise StowRequestError(400, "multipart body without any part")

    def discard(self) -> None:
        """Remove every file not yet stored (a dropped connection, a refused request)."""
        if self._current is not None and self._current.handle is not None:
            self._current.handle.close()
            self._current.path.unlink(missing_ok=True)
            self._current = None
        for part in self.ready:
            part.path.unlink(missing_ok=True)
        self.ready.clear()


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
            future = handler.placer.submit(handler.store.place, path, dest)
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


@dataclass(frozen=True, slots=True)
class _Affected:
    """What the C-STORE handler reads of a request: the file meta's UIDs stand in for the
    command's Affected UIDs (and the dataset must agree with them, as on C-STORE)."""

    AffectedSOPClassUID: str
    AffectedSOPInstanceUID: str


def response_body(outcomes: list[StowOutcome]) -> tuple[int, dict[str, Any]]:
    """HTTP status and DICOM JSON body for a finished request."""
    stored = [o for o in outcomes if o.status == 0]
    failed = [o for o in outcomes if o.status != 0]

    def item(outcome: StowOutcome, *, reason: bool) -> dict[str, Any]:
        entry: dict[str, Any] = {}
        if outcome.sop_class:
            entry[_CLASS] = {"vr": "UI", "Value": [outcome.sop_class]}
        if outcome.sop_uid:
            entry[_INSTANCE] = {"vr": "UI", "Value": [outcome.sop_uid]}
        if reason:
            entry[_REASON] = {"vr": "US", "Value": [outcome.status]}
        return entry

    body: dict[str, Any] = {}
    if stored:
        body[_REFERENCED] = {"vr": "SQ", "Value": [item(o, reason=False) for o in stored]}
    if failed:
        body[_FAILED] = {"vr": "SQ", "Value": [item(o, reason=True) for o in failed]}
    status = 200 if not failed else (202 if stored else 409)
    return status, body


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
