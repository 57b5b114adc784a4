"""Helpers for the MLLP tests: a listener on a free port, the PyPI `hl7` client as the peer."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

import hl7
from hl7.client import MLLPClient
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.settings import Hl7Settings, Settings
from radraft.ehr.apply import OrderChange
from radraft.ehr.listener import run_listener


@contextlib.contextmanager
def running_listener(
    sessions: sessionmaker[Session], hl7_settings: Hl7Settings,
    on_order_change: Callable[[OrderChange], None] | None = None,
) -> Iterator[int]:
    """run_listener in a thread of its own; yields the port."""
    settings = Settings(hl7=hl7_settings)
    loop = asyncio.new_event_loop()
    ready = asyncio.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        task = loop.create_task(run_listener(settings, sessions, on_order_change=on_order_change,
                                             ready=ready))
        try:
            loop.run_until_complete(task)
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            failure.append(exc)
        finally:
            loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not ready.is_set():
        assert not failure and time.monotonic() < deadline, failure
        time.sleep(0.02)
    try:
        yield hl7_settings.port
    finally:
        loop.call_soon_threadsafe(lambda: [t.cancel() for t in asyncio.all_tasks(loop)])
        thread.join(30)
        assert not thread.is_alive(), "the listener did not stop"
        assert not failure, failure


def read_frame(sock: socket.socket) -> bytes:
    """One MLLP frame (VT ... FS CR) from `sock`, framing checked; b"" when it closed first."""
    buffer = b""
    while not buffer.endswith(b"\x1c\r"):
        chunk = sock.recv(65536)
        if not chunk:
            return b""
        buffer += chunk
    assert buffer.startswith(b"\x0b"), buffer[:40]
    return buffer


def hl7_send(port: int, message: bytes, *, timeout: float = 20) -> bytes:
    """Send one message with the `hl7` package's MLLPClient; the whole framed reply."""
    with MLLPClient("127.0.0.1", port) as client:
        client.socket.settimeout(timeout)
        reply: bytes = client.send_message(message)
        while not reply.endswith(b"\x1c\r"):
            more = client.socket.recv(65536)
            assert more, "connection closed in the middle of the ACK"
            reply += more
    assert reply.startswith(b"\x0b") and reply.endswith(b"\x1c\r"), reply[:80]
    return reply


def ack_of(reply: bytes) -> hl7.Message:
    """The ACK parsed by the `hl7` package (not by radraft's own splitter)."""
    return hl7.parse(reply[1:-2].decode("utf-8"))
