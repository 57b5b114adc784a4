"""SIGKILL the listener during a 1,000-message burst: every AA'd message is in the database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from conftest import free_port
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import Hl7Message
from radraft.core.errors import DeliveryError
from radraft.ehr.mllp import AckResult, send_mllp
from radraft.ehr.samples import demo_messages

SERVER = """
import asyncio, sys
from radraft.core.db import make_engine, make_sessionmaker
from radraft.core.settings import Hl7Settings, Settings
from radraft.ehr.listener import run_listener
settings = Settings(hl7=Hl7Settings(host="127.0.0.1", port=int(sys.argv[2])))
asyncio.run(run_listener(settings, make_sessionmaker(make_engine(sys.argv[1]))))
"""


def _start(db_url: str, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-c", SERVER, db_url, str(port)])
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("listener did not start")


def test_sigkill_during_burst_loses_no_acked_message(
    db_url: str, sessions: sessionmaker[Session],
) -> None:
    port = free_port()
    proc = _start(db_url, port)
    acked: list[str] = []
    template = demo_messages(accession="K", patient_id="PK")[1]
    try:
        for number in range(1000):
            message = template.replace(b"LABK", f"BURST{number}".encode())
            if number == 300:
                os.kill(proc.pid, signal.SIGKILL)
            try:
                ack: AckResult = send_mllp("127.0.0.1", port, message, timeout_s=5)
            except DeliveryError:  # the listener is gone: the burst ends here
                break
            acked.append(ack.control_id)
    finally:
        proc.kill()
        proc.wait()
    assert len(acked) >= 300
    restarted = _start(db_url, port)
    try:
        with sessions() as session:
            stored = set(session.scalars(select(Hl7Message.control_id)))
        assert set(acked) <= stored
    finally:
        restarted.kill()
        restarted.wait()
