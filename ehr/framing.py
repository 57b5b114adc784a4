"""Incremental MLLP de-framing (VT message FS CR) that never lets bad bytes stop a connection.

Outside a frame only CR/LF (keep-alive padding some engines send) are tolerated; any other byte
is a protocol violation and the connection is closed, as real engines do, rather than waiting
silently for a frame that will never come. Inside a frame, a second VT means the previous frame
was truncated: it is dropped and the new one starts. A frame over the size limit is answered
(AR) as soon as the limit is crossed, then skipped up to its FS, so memory stays bounded.
"""

from __future__ import annotations

from dataclasses import dataclass

START = 0x0B
FS = 0x1C
CR = 0x0D


@dataclass(frozen=True)
class Frame:
    body: bytes


@dataclass(frozen=True)
class Oversize:
    head: bytes  # the first bytes of the frame (enough for its MSH, to echo MSH-10)
    size: int


@dataclass(frozen=True)
class Truncated:
    size: int  # bytes of the frame that a new VT cut short


@dataclass(frozen=True)
class Violation:
    reason: str


Event = Frame | Oversize | Truncated | Violation


class Deframer:
    """Feed received bytes, get complete frames and problems, in order."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._body = bytearray()
        self._in_frame = False
        self._skipping = False  # inside an oversize frame, waiting for its FS
        self._size = 0

    @property
    def in_frame(self) -> bool:
        return self._in_frame

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        view = memoryview(data)
        pos = 0
        while pos < len(view):
            if not self._in_frame:
                byte = view[pos]
                pos += 1
                if byte == START:
                    self._in_frame, self._skipping, self._size = True, False, 0
                    self._body.clear()
                elif byte not in (CR, 0x0A, FS):
                    events.append(Violation(f"byte 0x{byte:02X} outside an MLLP frame"))
                    return events
                continue
            chunk = bytes(view[pos:])
            cut = min((i for i in (chunk.find(bytes([FS])), chunk.find(bytes([START])))
                       if i >= 0), default=-1)
            part = chunk if cut < 0 else chunk[:cut]
            self._take(part, events)
            if cut < 0:
                return events
            pos += cut + 1
            if chunk[cut] == START:  # the previous frame never ended
                events.append(Truncated(self._size))
                self._body.clear()
                self._skipping, self._size = False, 0
                continue
            # FS: the frame is complete (the CR that should follow is skipped outside a frame)
            if not self._skipping:
                events.append(Frame(bytes(self._body)))
            self._body.clear()
            self._in_frame = self._skipping = False
        return events

    def _take(self, part: bytes, events: list[Event]) -> None:
        self._size += len(part)
        if self._skipping:
            return
        self._body += part
        if len(self._body) > self.max_bytes:
            events.append(Oversize(bytes(self._body[:4096]), self._size))
            self._body.clear()
            self._skipping = True
