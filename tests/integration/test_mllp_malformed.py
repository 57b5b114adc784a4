"""Malformed input never takes the listener down: each case gets AE/AR or a closed connection,
never silence until the peer gives up. Also the idle and frame timeouts, and TLS."""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.net import free_port
from mllp_helpers import ack_of, hl7_send, read_frame, running_listener
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import Hl7Message
from radraft.core.errors import PermanentDeliveryError, TransientDeliveryError
from radraft.core.settings import Hl7Settings
from radraft.ehr.mllp import send_mllp
from radraft.ehr.samples import demo_messages

LIMIT = 64 * 1024
ORDER = demo_messages(accession="M1", patient_id="PM")[0]


def _variant(control: str, old: bytes = b"", new: bytes = b"") -> bytes:
    """The demo order with MSH-10 = `control` and `old` replaced by `new`."""
    message = ORDER.replace(b"|ORMM1|", f"|{control}|".encode())
    assert not old or old in message
    return message.replace(old, new) if old else message


@pytest.fixture
def port(sessions: sessionmaker[Session]) -> Iterator[int]:
    settings = Hl7Settings(host="127.0.0.1", port=free_port(), max_message_bytes=LIMIT,
                           idle_timeout_s=2, frame_timeout_s=1)
    with running_listener(sessions, settings) as listening:
        yield listening


def _answer(port: int, payload: bytes) -> tuple[str, str, str]:
    """(MSA-1, ERR-3 code, ERR-2) of the answer to `payload` (already framed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(payload)
        ack = ack_of(read_frame(sock))
    errs = [s for s in ack if str(s[0]) == "ERR"]
    err = errs[0] if errs else None
    return (str(ack.segment("MSA")[1]), str(err[3][0][0]) if err else "",
            str(err[2]) if err else "")


def _closed(port: int, payload: bytes, within: float) -> float:
    """Seconds until the listener closes the connection after `payload` (no answer)."""
    with socket.create_connection(("127.0.0.1", port), timeout=within + 5) as sock:
        start = time.monotonic()
        sock.sendall(payload)
        assert sock.recv(65536) == b""  # closed, nothing sent back
        return time.monotonic() - start


def _alive(port: int) -> None:
    assert str(ack_of(hl7_send(port, ORDER)).segment("MSA")[1]) == "AA"


@pytest.mark.parametrize(("payload", "expected"), [
    (b"\x0bthis is not HL7\x1c\r", ("AR", "100", "MSH^1^")),
    (b"\x0b" + os.urandom(2000).replace(b"\x1c", b"").replace(b"\x0b", b"") + b"\x1c\r",
     ("AR", "100", "MSH^1^")),
    (b"\x0bPID|1||X\rORC|NW|1\x1c\r", ("AR", "100", "MSH^1^")),  # missing MSH
    (b"\x0b" + _variant("C1", b"ORM^O01", b"") + b"\x1c\r", ("AE", "101", "MSH^1^9")),
    (b"\x0b" + _variant("C2", b"ORM^O01", b"XYZ^Q99") + b"\x1c\r", ("AR", "200", "MSH^1^9")),
    (b"\x0b" + _variant("C3", b"ORM^O01", b"ADT^A99") + b"\x1c\r", ("AR", "201", "MSH^1^9")),
    (b"\x0b" + _variant("C4", b"|P|2.3", b"|T|2.3") + b"\x1c\r", ("AR", "202", "MSH^1^11")),
    (b"\x0b" + _variant("C5", b"|P|2.3", b"|P|2.9") + b"\x1c\r", ("AR", "203", "MSH^1^12")),
    (b"\x0b" + _variant("", b"", b"") + b"\x1c\r", ("AE", "101", "MSH^1^10")),
    (b"\x0b" + _variant("C6", b"PID|1||PM^^^HOSP", b"PID|1||") + b"\x1c\r",
     ("AE", "101", "PID^1^3")),
    # truncated by a new start block: the cut-short frame is dropped, the next one answered
    (b"\x0bMSH|^~\\&|HALF\x0b" + _variant("C7") + b"\x1c\r", ("AA", "", "")),
    (b"\x0b" + _variant("C8") + b"\x1c", ("AA", "", "")),  # FS without the CR
], ids=["text", "binary", "no-msh", "empty-msh9", "unknown-type", "unknown-event",
        "training", "version", "no-control-id", "no-pid3", "truncated", "fs-only"])
def test_each_bad_frame_gets_a_specific_answer(
    port: int, payload: bytes, expected: tuple[str, str, str],
) -> None:
    code, err, location = _answer(port, payload)
    assert (code, err) == expected[:2]
    assert location.startswith(expected[2])
    _alive(port)


def test_oversize_is_refused_and_the_connection_goes_on(
    port: int, sessions: sessionmaker[Session],
) -> None:
    big = _variant("BIG1") + b"NTE|1||" + b"x" * (LIMIT + 10) + b"\r"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"\x0b" + big + b"\x1c\r" + b"\x0b" + _variant("AFTER") + b"\x1c\r")
        first, second = ack_of(read_frame(sock)), ack_of(read_frame(sock))
    assert (str(first.segment("MSA")[1]), str(first.segment("MSA")[2])) == ("AR", "BIG1")
    assert "over" in str(first.segment("ERR")[3][0][1])
    assert (str(second.segment("MSA")[1]), str(second.segment("MSA")[2])) == ("AA", "AFTER")
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Hl7Message)) == 1


def test_unframed_junk_idle_and_stalled_frames_close_the_connection(port: int) -> None:
    assert _closed(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1) < 1  # at once
    assert _closed(port, os.urandom(64).replace(b"\x0b", b"!"), 1) < 1
    assert 0.5 < _closed(port, b"\x0bMSH|^~\\&|STALLED", 3) < 3  # frame_timeout_s = 1
    assert 1.5 < _closed(port, b"", 5) < 5  # idle_timeout_s = 2
    _alive(port)


def test_peer_closing_mid_frame_and_many_connections(port: int) -> None:
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"\x0b" + ORDER[:50])
    socks = [socket.create_connection(("127.0.0.1", port), timeout=20) for _ in range(50)]
    try:
        for number, sock in enumerate(socks):
            sock.sendall(b"\x0b" + _variant(f"MANY{number}") + b"\x1c\r")
        acks = [ack_of(read_frame(sock)) for sock in socks]
    finally:
        for sock in socks:
            sock.close()
    assert [str(a.segment("MSA")[2]) for a in acks] == [f"MANY{n}" for n in range(50)]
    assert {str(a.segment("MSA")[1]) for a in acks} == {"AA"}
    _alive(port)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def test_tls(sessions: sessionmaker[Session], certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    settings = Hl7Settings(host="127.0.0.1", port=free_port(), tls_cert=cert, tls_key=key,
                           idle_timeout_s=2)
    with running_listener(sessions, settings) as port:
        client = ssl.create_default_context(cafile=str(cert))
        ack = send_mllp("127.0.0.1", port, ORDER, timeout_s=10, tls=client)
        assert (ack.code, ack.control_id) == ("AA", "ORMM1")
        with pytest.raises(PermanentDeliveryError, match="PID-3"):
            send_mllp("127.0.0.1", port, _variant("T2", b"PID|1||PM^^^HOSP", b"PID|1||"),
                      timeout_s=10, tls=client)
        # plain MLLP to the TLS port: the handshake fails, the connection is closed
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"\x0b" + ORDER + b"\x1c\r")
            with contextlib.suppress(ConnectionResetError):  # reset or closed: both are fine
                assert sock.recv(65536) == b""
        assert send_mllp("127.0.0.1", port, _variant("T3"), timeout_s=10,
                         tls=client).code == "AA"
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Hl7Message)) == 3


def test_tls_client_certificates(sessions: sessionmaker[Session],
                                 certificate: tuple[Path, Path]) -> None:
    """hl7.tls_ca set: a sender without a certificate signed by it is refused (TLS), one with
    it is served."""
    cert, key = certificate
    settings = Hl7Settings(host="127.0.0.1", port=free_port(), tls_cert=cert, tls_key=key,
                           tls_ca=cert)
    with running_listener(sessions, settings) as port:
        anonymous = ssl.create_default_context(cafile=str(cert))
        with pytest.raises(TransientDeliveryError):
            send_mllp("127.0.0.1", port, ORDER, timeout_s=10, tls=anonymous)
        known = ssl.create_default_context(cafile=str(cert))
        known.load_cert_chain(cert, key)
        assert send_mllp("127.0.0.1", port, ORDER, timeout_s=10, tls=known).code == "AA"
