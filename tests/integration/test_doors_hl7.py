"""The HL7 door of a real `radraft serve` (issue 25, items 6 and 7): the sender allow-list
(by address and by client certificate), batches bounded, a frame's deadline against a
slow trickle, TLS for outbound MLLP, and no forged log line from MSH-10."""

from __future__ import annotations

import re
import socket
import ssl
import time
from pathlib import Path

import pytest
from doors_helpers import hl7_message, make_pki, mllp_exchange, read_mllp, running_serve
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import Hl7Message
from radraft.core.errors import TransientDeliveryError
from radraft.core.settings import Hl7Destination
from radraft.worker.senders import send_hl7


def _stored(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Hl7Message)) or 0)


def _closed_unanswered(port: int, message: bytes) -> bool:
    """True when the server closes the connection without answering `message`."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        try:
            sock.sendall(b"\x0b" + message + b"\x1c\r")
            return read_mllp(sock) == b""
        except (ConnectionResetError, BrokenPipeError):
            return True


def _batch(count: int) -> bytes:
    body = b"".join(hl7_message(f"B{n}") for n in range(count))
    return (b"FHS|^~\\&|LAB|HOSP\rBHS|^~\\&|LAB|HOSP||||||||BATCH1\r" + body
            + f"BTS|{count}\rFTS|1\r".encode())


def test_senders_outside_the_allow_list_are_disconnected_unread(
    tmp_path: Path, db_url: str, sessions: sessionmaker[Session],
) -> None:
    with running_serve(tmp_path / "a", db_url,
                       hl7={"allowed_senders": ["10.99.0.0/16", "CN=ris.test"]}) as served:
        assert _closed_unanswered(served.hl7_port, hl7_message("NOPE1", event="A40"))
        assert _stored(sessions) == 0
        assert "not in hl7.allowed_senders" in served.log.read_text()
    with running_serve(tmp_path / "b", db_url,
                       hl7={"allowed_senders": ["127.0.0.0/8"]}) as served:
        assert b"MSA|AA|OK1" in served.hl7(hl7_message("OK1"))
        assert _stored(sessions) == 1


def test_allow_list_by_client_certificate_over_tls(
    tmp_path: Path, db_url: str, sessions: sessionmaker[Session],
) -> None:
    pki = make_pki(tmp_path / "pki", "radraft.test", "ris.test", "intruder.test")
    cert, key = pki.pair("radraft.test")
    hl7 = {"tls_cert": str(cert), "tls_key": str(key), "tls_ca": str(pki.ca),
           "allowed_senders": ["CN=ris.test"]}
    with running_serve(tmp_path / "s", db_url, hl7=hl7) as served:
        def over_tls(name: str, control: str) -> bytes:
            context = ssl.create_default_context(cafile=str(pki.ca))
            context.load_cert_chain(*pki.pair(name))
            with socket.create_connection(("127.0.0.1", served.hl7_port), timeout=30) as raw, \
                    context.wrap_socket(raw, server_hostname="localhost") as sock:
                try:
                    sock.sendall(b"\x0b" + hl7_message(control) + b"\x1c\r")
                    return read_mllp(sock)
                except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
                    return b""

        assert over_tls("intruder.test", "X1") == b""
        assert b"MSA|AA|RIS1" in over_tls("ris.test", "RIS1")
        # MLLP TLS out: the outbox's sender, to this TLS peer with its client certificate.
        dest = Hl7Destination(kind="hl7", host="127.0.0.1", port=served.hl7_port, tls=True,
                              tls_ca=pki.ca, tls_cert=pki.pair("ris.test")[0],
                              tls_key=pki.pair("ris.test")[1], timeout_s=30)
        assert send_hl7(dest, hl7_message("OUT1")) == "HL7 AA"
        # A server whose certificate the configured CA did not sign is not talked to.
        other = make_pki(tmp_path / "other", "ris.test")
        wrong = dest.model_copy(update={"tls_ca": other.ca})
        with pytest.raises(TransientDeliveryError, match="CERTIFICATE_VERIFY_FAILED"):
            send_hl7(wrong, hl7_message("OUT2"))
        # Plain text to the TLS door: nothing stored.
        assert _closed_unanswered(served.hl7_port, hl7_message("PLAIN1"))
    assert _stored(sessions) == 2  # RIS1 and OUT1 only


def test_batches_are_bounded_and_frames_have_a_deadline(
    tmp_path: Path, db_url: str, sessions: sessionmaker[Session],
) -> None:
    with running_serve(tmp_path, db_url,
                       hl7={"max_batch_messages": 50, "frame_timeout_s": 2}) as served:
        refused = mllp_exchange(served.hl7_port, _batch(51), timeout=60)
        assert refused.startswith(b"FHS") and b"MSA|AR|" in refused
        assert b"hl7.max_batch_messages" in refused and _stored(sessions) == 0
        accepted = mllp_exchange(served.hl7_port, _batch(50), timeout=60)
        assert accepted.count(b"MSA|AA|") == 50 and _stored(sessions) == 50
        # Slowloris: one byte every 0.2 s keeps every single read under the 2 s timeout;
        # the frame as a whole must still be finished within it.
        message = b"\x0b" + hl7_message("SLOW1") + b"\x1c\r"
        with socket.create_connection(("127.0.0.1", served.hl7_port), timeout=30) as sock:
            closed = False
            for byte in message:
                try:
                    sock.sendall(bytes([byte]))
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
                time.sleep(0.2)
            if not closed:
                closed = read_mllp(sock) == b""
        assert closed, "a trickled frame was accepted"
        assert _stored(sessions) == 50
        assert "frame not finished in time" in served.log.read_text()


def test_msh10_cannot_forge_a_log_line(
    tmp_path: Path, db_url: str, sessions: sessionmaker[Session],
) -> None:
    forged = "X\u2028FORGED LINE\x1b[2J\x07"
    with running_serve(tmp_path, db_url) as served:
        answer = served.hl7(hl7_message(forged))
        assert b"MSA|" in answer
    text = served.log.read_text(encoding="utf-8")
    assert "\\u2028FORGED LINE\\x1b[2J\\x07" in text  # logged, escaped
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f\x85\u2028\u2029]", text)
