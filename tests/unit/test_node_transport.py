"""The fast path's waits and reads: EarlySync's hand-over, the one skipped reactor sleep,
FastSocket's bounded reads."""

from __future__ import annotations

import os
import socket
import struct
import threading
from pathlib import Path

import pytest
from node_helpers import fast_socket

from radraft.dicom_node.fast import early_sync as early_sync_module
from radraft.dicom_node.fast.early_sync import EarlySync
from radraft.dicom_node.fast.reactor import REACTOR_SLEEP_S, TimeWithoutReactorSleep
from radraft.dicom_node.fast.transport import PduTooLong


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


def test_only_the_reactor_sleep_of_accelerated_threads_is_skipped() -> None:
    slept: list[tuple[str, float]] = []

    class RecordingTime:
        """The real module's stand-in: records each sleep instead of sleeping."""

        def sleep(self, seconds: float) -> None:
            slept.append((threading.current_thread().name, seconds))

        def monotonic(self) -> float:
            return 42.0

    patched = TimeWithoutReactorSleep(RecordingTime())  # type: ignore[arg-type]

    def run(accelerated: bool, seconds: float) -> None:
        threading.current_thread()._accelerated = accelerated  # type: ignore[attr-defined]
        patched.sleep(seconds)

    cases = {"fast": (True, REACTOR_SLEEP_S), "plain": (False, REACTOR_SLEEP_S),
             "other": (True, 0.002)}
    for name, case in cases.items():
        thread = threading.Thread(target=run, args=case, name=name)
        thread.start()
        thread.join()
    # The accelerated thread's reactor sleep is skipped; a plain thread's, and any other
    # duration, reach the real module.
    assert slept == [("plain", REACTOR_SLEEP_S), ("other", 0.002)]
    assert patched.monotonic() == 42.0  # the rest of `time` passes through


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


def test_fast_socket_refuses_a_pdu_longer_than_its_limit() -> None:
    sender, receiver = socket.socketpair()
    sender.sendall(struct.pack(">BBI", 4, 0, 512 << 20))  # declares 512 MiB, sends nothing
    fast = fast_socket(receiver, max_pdu=1 << 20)
    head = fast.recv(6)
    with pytest.raises(PduTooLong):
        fast.recv(struct.unpack(">BBI", head)[2])
    sender.close()
    receiver.close()
    os.close(fast._wake_fd)


def test_fast_socket_grows_a_long_pdu_only_as_its_bytes_arrive() -> None:
    """A peer that declares 4 MiB and sends 100 KiB costs pieces of at most what arrived."""
    sender, receiver = socket.socketpair()
    declared, sent = 4 << 20, 100_000
    sender.sendall(struct.pack(">BBI", 4, 0, declared) + b"x" * sent)
    sender.close()
    fast = fast_socket(receiver, max_pdu=declared)
    arrived: list[int] = []
    fast.on_arrival = arrived.append
    head = fast.recv(6)
    body = fast.recv(struct.unpack(">BBI", head)[2])
    assert len(body) == sent  # cut short: the peer closed
    assert sum(arrived) == 6 + sent  # every received byte was reported
    receiver.close()
    os.close(fast._wake_fd)
