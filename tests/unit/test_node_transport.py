"""The node's event-driven waits: EarlySync's hand-over and ReactorClock's one skipped sleep."""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
from pathlib import Path

import pytest
from node_helpers import fast_socket

from radraft.dicom_node import early_sync as early_sync_module
from radraft.dicom_node.early_sync import EarlySync
from radraft.dicom_node.fast_transport import ReactorClock


def test_wait_returns_after_the_started_fsync(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[Path] = []
    release = threading.Event()

    def slow_fsync(path: Path) -> None:
        release.wait(5)
        synced.append(path)

    monkeypatch.setattr(early_sync_module, "fsync_file", slow_fsync)
    sync = EarlySync()
    received = tmp_path / "a.dcm"
    received.write_bytes(b"x")
    sync.start(received)
    done = threading.Event()
    waiter = threading.Thread(target=lambda: (sync.wait(received), done.set()))
    waiter.start()
    assert not done.wait(0.2), "wait() returned before the fsync finished"
    release.set()
    assert done.wait(5)
    waiter.join()
    assert synced == [received]
    sync.shutdown()


def test_wait_fsyncs_itself_when_nothing_was_started(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[Path] = []
    monkeypatch.setattr(early_sync_module, "fsync_file", synced.append)
    sync = EarlySync()
    sync.shutdown()
    received = tmp_path / "b.dcm"
    sync.start(received)  # after shutdown: nothing starts, nothing raises
    sync.wait(received)
    assert synced == [received]


def test_wait_raises_the_fsync_error(tmp_path: Path) -> None:
    sync = EarlySync()
    missing = tmp_path / "gone.dcm"
    sync.start(missing)
    with pytest.raises(FileNotFoundError):
        sync.wait(missing)
    sync.shutdown()


def test_reactor_clock_skips_only_the_reactor_sleep_of_accelerated_threads() -> None:
    clock = ReactorClock(time)
    slept: dict[str, float] = {}

    def run(name: str, accelerated: bool, seconds: float) -> None:
        thread = threading.current_thread()
        thread._accelerated = accelerated  # type: ignore[attr-defined]
        start = time.perf_counter()
        for _ in range(20):
            clock.sleep(seconds)
        slept[name] = time.perf_counter() - start

    cases = {"fast": (True, 0.001), "plain": (False, 0.001), "other": (True, 0.002)}
    threads = [threading.Thread(target=run, args=(n, *c)) for n, c in cases.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert slept["fast"] < 0.01  # 20 skipped 1 ms sleeps
    assert slept["plain"] >= 0.02  # not accelerated: every sleep is real
    assert slept["other"] >= 0.04  # any other duration is real too
    assert clock.monotonic() > 0  # the rest of `time` passes through


def _pdu(length: int) -> bytes:
    return struct.pack(">BBI", 4, 0, length) + os.urandom(length)


def test_fast_socket_returns_each_pdu_exactly_across_its_read_ahead() -> None:
    sender, receiver = socket.socketpair()
    pdus = [_pdu(n) for n in (10, 16384, 16384, 70_000, 300_000, 5, 16384, 65_535)]

    def send() -> None:
        for pdu in pdus:
            sender.sendall(pdu)
        sender.close()

    thread = threading.Thread(target=send)
    thread.start()
    fast = fast_socket(receiver)
    got = []
    for _ in pdus:
        head = fast.recv(6)
        got.append(bytes(head + fast.recv(struct.unpack(">BBI", head)[2])))
    thread.join()
    assert got == pdus
    assert fast.recv(6) == bytearray()  # the peer closed: nothing more
    receiver.close()
    os.close(fast._wake_fd)


def test_fast_socket_is_ready_from_its_read_ahead_and_short_when_the_peer_stops() -> None:
    sender, receiver = socket.socketpair()
    first, second = _pdu(100), _pdu(200)
    sender.sendall(first + second[:50])
    sender.close()
    fast = fast_socket(receiver)
    assert fast.recv(6) == first[:6]
    assert fast.ready  # the rest of the first PDU is buffered: no select needed
    assert fast.recv(100) == first[6:]
    assert fast.recv(6) == second[:6]
    assert fast.recv(200) == second[6:50]  # cut short: fewer bytes, as a closed socket gives
    receiver.close()
    os.close(fast._wake_fd)
