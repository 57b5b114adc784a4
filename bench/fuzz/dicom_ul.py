"""A minimal DICOM upper-layer client written for fuzzing: every byte it sends is built
here (so any of them can be mutated), and it reads back whatever the server answers.

PS3.8 9.3: A-ASSOCIATE-RQ (0x01), -AC (0x02), -RJ (0x03), P-DATA-TF (0x04), A-RELEASE-RQ
(0x05), -RP (0x06), A-ABORT (0x07). Commands in Implicit VR Little Endian (PS3.7 6.3.1).
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass

APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
VERIFICATION = "1.2.840.10008.1.1"
IMPLEMENTATION_UID = "1.2.826.0.1.3680043.10.1234.99"


def _uid(value: str) -> bytes:
    raw = value.encode("ascii", "replace")
    return raw + b"\x00" if len(raw) % 2 else raw


def _item(kind: int, body: bytes) -> bytes:
    return struct.pack(">BBH", kind, 0, len(body)) + body


def _ae(title: str) -> bytes:
    return title.encode("ascii", "replace")[:16].ljust(16, b" ")


def associate_rq(called: str, calling: str,
                 contexts: list[tuple[int, str, list[str]]], max_pdu: int = 65536) -> bytes:
    """An A-ASSOCIATE-RQ proposing `contexts` [(odd id, abstract syntax, [transfer syntaxes])]."""
    body = struct.pack(">HH", 1, 0) + _ae(called) + _ae(calling) + b"\x00" * 32
    body += _item(0x10, _uid(APPLICATION_CONTEXT))
    for context_id, abstract, syntaxes in contexts:
        sub = _item(0x30, _uid(abstract)) + b"".join(_item(0x40, _uid(ts)) for ts in syntaxes)
        body += _item(0x20, struct.pack(">BBBB", context_id, 0, 0, 0) + sub)
    user = _item(0x51, struct.pack(">I", max_pdu)) + _item(0x52, _uid(IMPLEMENTATION_UID))
    body += _item(0x50, user)
    return struct.pack(">BBI", 0x01, 0, len(body)) + body


def _element(group: int, element: int, value: bytes) -> bytes:
    return struct.pack("<HHI", group, element, len(value)) + value


def command(fields: list[tuple[int, bytes]]) -> bytes:
    """A command set (group 0000) with its group length, Implicit VR Little Endian."""
    body = b"".join(_element(0x0000, tag, value) for tag, value in sorted(fields))
    return _element(0x0000, 0x0000, struct.pack("<I", len(body))) + body


def c_store_rq(message_id: int, sop_class: str, sop_instance: str) -> bytes:
    return command([(0x0002, _uid(sop_class)), (0x0100, struct.pack("<H", 0x0001)),
                    (0x0110, struct.pack("<H", message_id)), (0x0700, struct.pack("<H", 0)),
                    (0x0800, struct.pack("<H", 0x0000)), (0x1000, _uid(sop_instance))])


def c_echo_rq(message_id: int) -> bytes:
    return command([(0x0002, _uid(VERIFICATION)), (0x0100, struct.pack("<H", 0x0030)),
                    (0x0110, struct.pack("<H", message_id)),
                    (0x0800, struct.pack("<H", 0x0101))])


def p_data(context_id: int, data: bytes, *, is_command: bool, last: bool = True,
           fragment: int = 16384) -> bytes:
    """P-DATA-TF PDUs carrying `data` in fragments of `fragment` bytes."""
    out = b""
    chunks = [data[i:i + fragment] for i in range(0, len(data), fragment)] or [b""]
    for index, chunk in enumerate(chunks):
        flags = (1 if is_command else 0) | (2 if last and index == len(chunks) - 1 else 0)
        pdv = struct.pack(">IBB", len(chunk) + 2, context_id, flags) + chunk
        out += struct.pack(">BBI", 0x04, 0, len(pdv)) + pdv
    return out


RELEASE_RQ = struct.pack(">BBI", 0x05, 0, 4) + b"\x00" * 4
ABORT = struct.pack(">BBI", 0x07, 0, 4) + b"\x00" * 4


@dataclass
class Answer:
    """What the server sent back, and how the exchange ended."""

    pdus: list[tuple[int, bytes]]
    ended: str  # "closed" (by the server), "timeout" (neither answer nor close in time)
    seconds: float

    def classify(self) -> str:
        kinds = [kind for kind, _ in self.pdus]
        if 0x03 in kinds:
            return "associate-rj"
        statuses = [s for kind, body in self.pdus if kind == 0x04
                    for s in _statuses(body)]
        parts = [f"status-0x{s:04X}" for s in statuses]
        if 0x07 in kinds:
            parts.append("abort")
        if 0x06 in kinds:
            parts.append("released")
        if not self.pdus:
            parts.append("closed-silently" if self.ended == "closed" else "no-answer")
        elif not parts:
            parts.append("ac-only")
        if self.ended == "timeout":
            parts.append("hang")
        return "+".join(dict.fromkeys(parts))


def _statuses(pdu: bytes) -> list[int]:
    """(0000,0900) Status values in the command PDVs of one P-DATA-TF body."""
    found = []
    offset = 0
    while offset + 6 <= len(pdu):
        length = struct.unpack(">I", pdu[offset:offset + 4])[0]
        flags = pdu[offset + 5]
        value = pdu[offset + 6:offset + 4 + length]
        if flags & 1:
            position = value.find(b"\x00\x00\x00\x09\x02\x00\x00\x00")
            if position >= 0:
                found.append(struct.unpack("<H", value[position + 8:position + 10])[0])
        offset += 4 + max(length, 2)
    return found


def _read_pdus(buffer: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    pdus = []
    while len(buffer) >= 6:
        kind, _, length = struct.unpack(">BBI", buffer[:6])
        if len(buffer) < 6 + length:
            break
        pdus.append((kind, buffer[6:6 + length]))
        buffer = buffer[6 + length:]
    return pdus, buffer


def first_pdu_length(stream: bytes) -> int:
    """Where the first PDU of `stream` ends, by its declared length (capped by the stream)."""
    if len(stream) < 6:
        return len(stream)
    return min(6 + struct.unpack(">I", stream[2:6])[0], len(stream))


def exchange(port: int, stream: bytes, *, wait_s: float = 10.0, half_close: bool = False,
             host: str = "127.0.0.1", source: str = "") -> Answer:
    """Send the first PDU of `stream` (the association request) and wait for the server's
    answer to it, as a real requestor does (a P-DATA before the A-ASSOCIATE-AC is a
    protocol violation the server aborts); then send the rest, signal its end
    (`half_close`), and read until the server closes or `wait_s` passes (a hang)."""
    start = time.monotonic()
    deadline = start + wait_s
    pdus: list[tuple[int, bytes]] = []
    buffer = b""
    first = first_pdu_length(stream)
    bind = (source, 0) if source else None
    with socket.create_connection((host, port), timeout=wait_s, source_address=bind) as sock:
        rest: bytes | None = stream[first:]

        def send(data: bytes, last: bool) -> None:
            try:
                sock.sendall(data)
                if last and half_close:
                    sock.shutdown(socket.SHUT_WR)
            except OSError:  # the server closed first (it may have answered: read on)
                pass

        send(stream[:first], last=not rest)
        if not rest:
            rest = None
        while True:
            if rest is not None and pdus:  # the request was answered: the rest follows
                send(rest, last=True)
                rest = None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return Answer(pdus, "timeout", time.monotonic() - start)
            sock.settimeout(remaining)
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                return Answer(pdus, "timeout", time.monotonic() - start)
            except OSError:
                chunk = b""
            if not chunk:
                more, _ = _read_pdus(buffer)
                return Answer(pdus + more, "closed", time.monotonic() - start)
            buffer += chunk
            more, buffer = _read_pdus(buffer)
            pdus += more
            if any(kind in (0x03, 0x06, 0x07) for kind, _ in more):
                return Answer(pdus, "closed", time.monotonic() - start)
