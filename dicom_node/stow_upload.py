"""STOW-RS request bodies (PS3.18 10.5): `multipart/related; type="application/dicom"` parsed
as it streams in, each part written to its own O_EXCL file in the store's temporary folder
(no upload is held in memory; a part cut off by a dropped connection is removed), and the
PS3.18 answer (table 10.5.3-1): 200 every instance stored, 202 some failed, 409 all failed,
with Referenced SOP Sequence and Failed SOP Sequence (Failure Reason = the C-STORE status the
node would have answered). The parts are stored by `stow_receive`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from python_multipart.multipart import MultipartParser

from radraft.dicom_node.errors import STATUS_CANNOT_UNDERSTAND, STATUS_OUT_OF_RESOURCES

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
