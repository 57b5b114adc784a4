"""send_mllp against radraft's own listener component: AA delivered, AE permanent, no peer."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from helpers.net import free_port
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.errors import PermanentDeliveryError, TransientDeliveryError
from radraft.core.settings import Hl7Settings, Settings
from radraft.ehr.component import Hl7Listener
from radraft.ehr.mllp import send_mllp
from radraft.ehr.samples import demo_messages


def test_send_mllp_outcomes(sessions: sessionmaker[Session]) -> None:
    port = free_port()
    listener = Hl7Listener(Settings(hl7=Hl7Settings(host="127.0.0.1", port=port)), sessions)
    listener.start()
    try:
        order, _lab = demo_messages(accession="S1", patient_id="P1")
        ack = send_mllp("127.0.0.1", port, order, timeout_s=10)
        assert (ack.code, ack.control_id) == ("AA", "ORMS1")
        no_accession = order.replace(b"|S1||", b"|||").replace(b"PS1", b"").replace(
            b"FS1", b"").replace(b"ORMS1", b"ORMX")
        with pytest.raises(PermanentDeliveryError, match="accession"):
            send_mllp("127.0.0.1", port, no_accession, timeout_s=10)
    finally:
        listener.stop()
    with pytest.raises(TransientDeliveryError):
        send_mllp("127.0.0.1", port, order, timeout_s=2)


def test_send_mllp_ar_silence_and_hangups_are_transient(sessions: sessionmaker[Session]) -> None:
    port = free_port()
    listener = Hl7Listener(Settings(hl7=Hl7Settings(host="127.0.0.1", port=port)), sessions)
    listener.start()
    order, _lab = demo_messages(accession="S2", patient_id="P2")
    try:
        training = order.replace(b"|P|2.3", b"|T|2.3")  # refused, not wrong: AR 202
        with pytest.raises(TransientDeliveryError, match="AR"):
            send_mllp("127.0.0.1", port, training, timeout_s=10)
    finally:
        listener.stop()
    with socket.socket() as silent:  # accepts, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        started = time.monotonic()
        with pytest.raises(TransientDeliveryError, match="no answer"):
            send_mllp("127.0.0.1", silent.getsockname()[1], order, timeout_s=1,
                      connect_timeout_s=5)
        assert time.monotonic() - started < 5
    with socket.socket() as rude:  # reads the message, hangs up without an answer
        rude.bind(("127.0.0.1", 0))
        rude.listen()

        def hang_up() -> None:
            conn, _ = rude.accept()
            conn.recv(65536)
            conn.close()

        thread = threading.Thread(target=hang_up)
        thread.start()
        with pytest.raises(TransientDeliveryError, match="closed before the ACK"):
            send_mllp("127.0.0.1", rude.getsockname()[1], order, timeout_s=5)
        thread.join()
