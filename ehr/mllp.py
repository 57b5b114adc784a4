"""MLLP framing, the original-mode ACK, and the sender used by the outbox."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime

from radraft.core.errors import Hl7Error, PermanentDeliveryError, TransientDeliveryError
from radraft.ehr.er7 import Message, parse

MAX_ACK_BYTES = 1 << 20
START = b"\x0b"
END = b"\x1c\x0d"


def frame(message: bytes) -> bytes:
    return START + message + END


@dataclass(frozen=True)
class AckResult:
    code: str  # AA / AE / AR
    control_id: str
    text: str


def build_ack(msg: Message | None, code: str, error: Hl7Error | None = None) -> bytes:
    """Original-mode ACK (v2.5 §2.9.2.2): MSA-2 echoes MSH-10; with an error, an ERR segment.

    ERR-2 is the location (segment ^ sequence ^ field), ERR-3 the HL7 table 0357 code, ERR-4
    the severity; ERR-1 carries the same for 2.3/2.4 receivers (kept for backward compatibility
    in 2.5), MSA-3 the text.
    """
    now = datetime.now(UTC).strftime("%Y%m%d%H%M%S")

    def get(index: int, component: int = 1) -> str:
        return escape(msg.get("MSH", index, component)) if msg is not None else ""

    control = get(10)
    version = get(12) or "2.5.1"
    segments = [
        f"MSH|^~\\&|RADRAFT|RADRAFT|{get(3)}|{get(4)}|{now}||ACK^{get(9, 2)}^ACK"
        f"|A{control[:19]}|P|{version}",
        f"MSA|{code}|{control}" + (f"|{_clean(error.reason)[:80]}" if error else ""),
    ]
    if error is not None:
        text = _clean(error.reason)[:60]
        location = f"{error.segment}^{error.position}^{error.field or ''}"
        segments.append(
            f"ERR|{location}^{error.code}&{text}&HL70357|{location}|{error.code}^{text}^HL70357"
            f"|{'W' if code == 'AA' else 'E'}")
    return ("\r".join(segments) + "\r").encode("utf-8")


def build_batch_ack(acks: list[bytes], *, with_file_header: bool, reference: str = "") -> bytes:
    """A batch of ACKs answering a batch (v2.5 §2.10.3): BHS (BHS-12 = the batch's BHS-11),
    one ACK per message, BTS."""
    now = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    lines = [f"BHS|^~\\&|RADRAFT|RADRAFT|||{now}|||||{escape(reference)}"]
    lines += [line for ack in acks for line in ack.decode("utf-8").split("\r") if line]
    lines.append(f"BTS|{len(acks)}")
    if with_file_header:
        lines = [f"FHS|^~\\&|RADRAFT|RADRAFT|||{now}", *lines, "FTS|1"]
    return ("\r".join(lines) + "\r").encode("utf-8")


def escape(value: str) -> str:
    """Re-escape a decoded value so that echoing it cannot break the ACK's structure."""
    for char, seq in (("\\", "\\E\\"), ("|", "\\F\\"), ("^", "\\S\\"), ("&", "\\T\\"),
                      ("~", "\\R\\"), ("\r", " "), ("\n", " ")):
        value = value.replace(char, seq)
    return value


def _clean(text: str) -> str:
    return "".join(" " if c in "|^~&\\\r\n" or not c.isprintable() else c for c in text)


def read_ack(raw: bytes) -> AckResult:
    msg = parse(raw)
    return AckResult(msg.get("MSA", 1), msg.get("MSA", 2),
                     msg.get("ERR", 3, 2) or msg.get("MSA", 3))


def send_mllp(
    host: str, port: int, message: bytes, *, timeout_s: float,
    tls: ssl.SSLContext | None = None, connect_timeout_s: float | None = None,
) -> AckResult:
    """Send one message on a new connection (so every retry reconnects), wait for its ACK.

    `connect_timeout_s` (default: `timeout_s`) bounds the TCP connect and TLS handshake,
    `timeout_s` the wait for the ACK. AA (or CA) → returned; AE/CE → PermanentDeliveryError
    (the content is refused: its reason is kept in the error); AR/CR, timeouts, unreadable
    answers and transport errors → TransientDeliveryError (the outbox retries them).
    """
    try:
        with socket.create_connection((host, port),
                                      timeout=connect_timeout_s or timeout_s) as raw_sock:
            sock = tls.wrap_socket(raw_sock, server_hostname=host) if tls else raw_sock
            sock.settimeout(timeout_s)
            sock.sendall(frame(message))
            buffer = b""
            while END not in buffer:
                chunk = sock.recv(65536)
                if not chunk:
                    raise TransientDeliveryError(f"{host}:{port} closed before the ACK")
                buffer += chunk
                if len(buffer) > MAX_ACK_BYTES:  # an ACK is a few hundred bytes
                    raise TransientDeliveryError(
                        f"{host}:{port}: answer over {MAX_ACK_BYTES} bytes without an end")
    except TimeoutError as exc:
        raise TransientDeliveryError(f"{host}:{port}: no answer within the timeout") from exc
    except OSError as exc:
        raise TransientDeliveryError(f"{host}:{port}: {exc}") from exc
    body = buffer[buffer.find(START) + 1: buffer.find(END)]
    try:
        ack = read_ack(body)
    except Hl7Error as exc:
        raise TransientDeliveryError(f"{host}:{port}: unreadable ACK: {exc}") from exc
    if ack.code in ("AA", "CA"):
        return ack
    if ack.code in ("AE", "CE"):
        raise PermanentDeliveryError(f"{host}:{port} answered {ack.code}: {ack.text}")
    raise TransientDeliveryError(f"{host}:{port} answered {ack.code or 'no MSA'}: {ack.text}")
