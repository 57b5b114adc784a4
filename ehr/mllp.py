"""MLLP framing, the original-mode ACK, and the sender used by the outbox."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime

from radraft.core.errors import Hl7Error, PermanentDeliveryError, TransientDeliveryError
from radraft.ehr.er7 import Message, parse

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
    """Original-mode ACK; MSA-2 echoes MSH-10; ERR-2 location, ERR-3 (table 0357), ERR-4."""
    now = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    get = msg.get if msg is not None else (lambda *_: "")
    control = get("MSH", 10)
    version = get("MSH", 12) or "2.5.1"
    trigger = get("MSH", 9, 2)
    segments = [
        f"MSH|^~\\&|RADRAFT|RADRAFT|{get('MSH', 3)}|{get('MSH', 4)}|{now}||ACK^{trigger}^ACK"
        f"|ACK{control}|P|{version}",
        f"MSA|{code}|{control}" + (f"|{_clean(error.reason)}" if error else ""),
    ]
    if error is not None:
        severity = "E"
        segments.append(
            f"ERR||{error.segment}^{error.position}^{error.field}|{error.code}^"
            f"{_clean(error.reason)[:60]}^HL70357|{severity}")
    return ("\r".join(segments) + "\r").encode("utf-8")


def _clean(text: str) -> str:
    return text.replace("|", "/").replace("^", " ").replace("\r", " ").replace("~", " ")


def read_ack(raw: bytes) -> AckResult:
    msg = parse(raw)
    return AckResult(msg.get("MSA", 1), msg.get("MSA", 2),
                     msg.get("ERR", 3, 2) or msg.get("MSA", 3))


def send_mllp(
    host: str, port: int, message: bytes, *, timeout_s: float,
    tls: ssl.SSLContext | None = None,
) -> AckResult:
    """Send one message, wait for its ACK.

    AA → returned; AE → PermanentDeliveryError; AR, timeouts, transport → TransientDeliveryError.
    """
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as raw_sock:
            sock = tls.wrap_socket(raw_sock, server_hostname=host) if tls else raw_sock
            sock.sendall(frame(message))
            buffer = b""
            while END not in buffer:
                chunk = sock.recv(65536)
                if not chunk:
                    raise TransientDeliveryError(f"{host}:{port} closed before the ACK")
                buffer += chunk
    except TimeoutError as exc:
        raise TransientDeliveryError(f"{host}:{port}: no ACK within {timeout_s} s") from exc
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
    raise TransientDeliveryError(f"{host}:{port} answered {ack.code}: {ack.text}")
