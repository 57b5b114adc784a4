"""SIGKILL the listener during a 1,000-message burst sent by the `hl7` package's MLLP client over
4 connections (so transactions are shared): every AA'd message is in the database after the
restart, applied, and the restarted listener answers its re-send without storing it again."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

from helpers.net import free_port
from hl7.client import MLLPClient
from mllp_helpers import ack_of, hl7_send, read_frame
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import Hl7Message, LabResult
from radraft.ehr.samples import demo_messages

SERVER = """
import asyncio, sys
from radraft.core.db import make_engine, make_sessionmaker
from radraft.core.settings import Hl7Settings, Settings
from radraft.ehr.listener import run_listener
settings = Settings(hl7=Hl7Settings(host="127.0.0.1", port=int(sys.argv[2])))
asyncio.run(run_listener(settings, make_sessionmaker(make_engine(sys.argv[1]))))
"""
TOTAL, CONNECTIONS, KILL_AFTER = 1000, 4, 300
TEMPLATE = demo_messages(accession="K", patient_id="PK")[1]


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


def _message(number: int) -> bytes:
    return TEMPLATE.replace(b"|LABK|", f"|BURST{number}|".encode())


def test_sigkill_during_burst_loses_no_acked_message(
    db_url: str, sessions: sessionmaker[Session],
) -> None:
    port = free_port()
    proc = _start(db_url, port)
    acked: list[str] = []
    lock = threading.Lock()

    def peer(connection: int) -> None:
        try:
            with MLLPClient("127.0.0.1", port) as client:
                client.socket.settimeout(10)
                for number in range(connection, TOTAL, CONNECTIONS):
                    client.socket.sendall(b"\x0b" + _message(number) + b"\x1c\r")
                    reply = read_frame(client.socket)
                    if not reply:
                        return  # killed: the burst ends here for this connection
                    ack = ack_of(reply)
                    assert str(ack.segment("MSA")[1]) == "AA"
                    with lock:
                        acked.append(str(ack.segment("MSA")[2]))
                        if len(acked) == KILL_AFTER:
                            os.kill(proc.pid, signal.SIGKILL)  # mid-burst, others in flight
        except OSError:
            return  # reset by the dying process

    try:
        threads = [threading.Thread(target=peer, args=(c,)) for c in range(CONNECTIONS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        proc.kill()
        proc.wait()
    assert KILL_AFTER <= len(acked) < TOTAL
    restarted = _start(db_url, port)
    try:
        with sessions() as session:
            stored = {row.control_id: row.ack_code for row in session.execute(
                select(Hl7Message.control_id, Hl7Message.ack_code))}
            applied = session.scalar(select(func.count()).select_from(LabResult).where(
                LabResult.message_id.in_(select(Hl7Message.id).where(
                    Hl7Message.control_id.in_(acked)))))
        assert all(stored.get(control) == "AA" for control in acked)
        assert applied == len(acked)  # each AA'd message was applied, and once
        again = ack_of(hl7_send(port, _message(int(acked[0].removeprefix("BURST")))))
        assert str(again.segment("MSA")[1]) == "AA"
        with sessions() as session:
            assert session.scalar(select(func.count()).select_from(Hl7Message)) == len(stored)
    finally:
        restarted.kill()
        restarted.wait()
