"""Event-driven waits for pynetdicom's acceptor threads (pinned pynetdicom 3.0.4).

storescu and most PACS send one C-STORE, wait for its response, then send the next, so
every millisecond an instance waits inside the SCP is a millisecond of throughput lost on
that association. Stock pynetdicom polls: its DUL thread sleeps 1 ms whenever the socket
has nothing to read (also while a response waits to be sent), the association thread
sleeps 1 ms between looks at the DIMSE queue, and PDUs are read 4 KiB per recv() call.
Measured here on a 512 KiB CT instance those waits cost about 3.5 ms per instance.

This module removes them without copying pynetdicom's state machine:
- `FastSocket.ready` waits (select) for data OR for a primitive queued for sending, up to
  `WAIT_S`, instead of answering at once and letting the DUL sleep;
- `WakingQueue` (the DUL's outgoing queue) wakes that select when a response is queued;
- `PatientQueue` (the DIMSE message queue) lets the association thread's non-blocking
  look wait `WAIT_S` for the message being received, so it runs the handler the moment
  the last fragment arrives, and starts the received file's fsync as it is queued;
- `FastSocket.recv` reads a long PDU into one buffer with recv_into, and short ones out of
  a read-ahead buffer (one recv for several 16 KiB PDUs);
- the DUL's event and PDU queues become `queue.SimpleQueue`s (only put and get(False)
  are used on them);
- mid-dataset P-DATA-TF PDUs of a C-STORE go from the read-ahead to its file
  (`dataset_lane`), past pynetdicom's PDU decoder and state machine;
- `ReactorClock` stands in for the `time` module of `pynetdicom.association`: its reactor
  sleeps 1 ms before every look at the DIMSE queue, which for an accelerated association
  (whose PatientQueue does the waiting) is skipped; every other sleep is a real one.
`accelerate()` applies them to one association before its threads start.
"""

from __future__ import annotations

import contextlib
import os
import queue
import select
import threading
import time
import weakref
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pynetdicom.association
from pynetdicom.transport import AssociationSocket, RequestHandler

from radraft.dicom_node import dataset_lane
from radraft.dicom_node.early_sync import EarlySync
from radraft.dicom_node.store_response import send_store_responses_directly

if TYPE_CHECKING:
    from pynetdicom.association import Association

# Longest a thread waits before it re-checks kill flags, timers and release requests.
WAIT_S = 0.01


class WakingQueue(queue.Queue[Any]):
    """The DUL's to-provider queue: every put() wakes the socket wait."""

    def __init__(self, wake_fd: int) -> None:
        super().__init__()
        self._wake_fd = wake_fd

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        # OSError: closed with the connection, nobody is waiting any more.
        with contextlib.suppress(OSError):
            os.eventfd_write(self._wake_fd, 1)


class PatientQueue(queue.Queue[Any]):
    """The DIMSE message queue: a non-blocking get() waits up to WAIT_S for a message.

    A complete C-STORE received to a file starts its fsync here (see `EarlySync`).
    """

    def __init__(self, early_sync: EarlySync) -> None:
        super().__init__()
        self._early_sync = early_sync

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        dataset_path = getattr(item[1], "_dataset_path", None)
        if dataset_path is not None:
            self._early_sync.start(dataset_path)
        super().put(item, block, timeout)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        if not block:
            return super().get(True, WAIT_S)
        return super().get(block, timeout)


_READ_AHEAD = 256 * 1024  # one recv takes every small PDU the peer has queued, up to this
_DIRECT = 64 * 1024  # a longer rest of a PDU is read straight into the PDU's own buffer


class FastSocket(AssociationSocket):
    """AssociationSocket whose `ready` waits for data or a wake-up, and whose recv is bulk.

    Bytes received beyond the PDU being read wait in a read-ahead buffer (`_ahead[_start:
    _end]`): with 16 KiB PDUs one recv() serves several of them, and `ready` answers from it
    without a select.
    """

    _wake_fd: int
    _ahead: memoryview
    _start: int
    _end: int

    def start_read_ahead(self, wake_fd: int) -> None:
        self._wake_fd = wake_fd
        self._ahead = memoryview(bytearray(_READ_AHEAD))
        self._start = self._end = 0

    @property
    def ready(self) -> bool:
        sock = self.socket
        if sock is None or self._is_connected is False:
            return False
        if self._end > self._start:
            return True  # part of the next PDU is here already
        # Events still queued for the state machine: answer at once, never wait.
        wait = 0.0 if self.event_queue.qsize() else WAIT_S
        try:
            readable, _, _ = select.select([sock.fileno(), self._wake_fd], [], [], wait)
        except (OSError, TimeoutError, ValueError):
            self.event_queue.put("Evt17")  # transport connection closed
            return False
        if self._wake_fd in readable:
            with contextlib.suppress(BlockingIOError):
                os.eventfd_read(self._wake_fd)
        return sock.fileno() in readable

    def recv(self, nr_bytes: int) -> bytearray:
        """Read exactly `nr_bytes` (fewer only if the peer closed), into one buffer."""
        assert self.socket is not None
        ahead, start, end = self._ahead, self._start, self._end
        if end - start >= nr_bytes:
            self._start = start + nr_bytes
            return bytearray(ahead[start:start + nr_bytes])
        buffer = bytearray(nr_bytes)
        view = memoryview(buffer)
        received = end - start
        view[:received] = ahead[start:end]
        self._start = self._end = 0
        while received < nr_bytes:
            missing = nr_bytes - received
            if missing >= _DIRECT:
                count = self.socket.recv_into(view[received:], missing)
                taken = count
            else:
                count = self.socket.recv_into(ahead, _READ_AHEAD)
                taken = min(count, missing)
                view[received:received + taken] = ahead[:taken]
                self._start, self._end = taken, count
            if count == 0:
                view.release()
                return buffer[:received]
            received += taken
        return buffer

    def peek(self, count: int) -> memoryview | None:
        """The next `count` bytes, left unread (received as needed); None if the peer closed.

        Only ask for bytes the peer has promised (a PDU header, or items inside a PDU whose
        length it declared): this waits for them like `recv` does.
        """
        assert self.socket is not None
        if self._end - self._start < count:
            kept = bytes(self._ahead[self._start:self._end])  # a few bytes
            self._ahead[:len(kept)] = kept
            self._start, self._end = 0, len(kept)
            while self._end < count:
                got = self.socket.recv_into(self._ahead[self._end:], _READ_AHEAD - self._end)
                if got == 0:
                    return None
                self._end += got
        return self._ahead[self._start:self._start + count]

    @property
    def buffered(self) -> int:
        """Bytes received and not yet read (`peek` up to this many receives nothing)."""
        return self._end - self._start

    def skip(self, count: int) -> None:
        """Drop `count` buffered bytes (already seen through `peek`)."""
        assert count <= self._end - self._start
        self._start += count

    def take(self, count: int) -> memoryview:
        """The next `count` buffered bytes, read: a view valid until the next receive."""
        assert count <= self._end - self._start
        start = self._start
        self._start = start + count
        return self._ahead[start:start + count]

    def recv_to(self, count: int, write: Callable[[memoryview], object]) -> int:
        """Hand the next `count` bytes to `write` piece by piece, as they come from the
        read-ahead (no PDU-sized buffer); returns how many (fewer only if the peer closed)."""
        assert self.socket is not None
        done = min(self._end - self._start, count)
        if done:
            write(self._ahead[self._start:self._start + done])
            self._start += done
        while done < count:
            got = self.socket.recv_into(self._ahead, _READ_AHEAD)
            if got == 0:
                self._start = self._end = 0
                return done
            taken = min(got, count - done)
            write(self._ahead[:taken])
            self._start, self._end = taken, got
            done += taken
        return done


_REACTOR_SLEEP_S = 0.001  # pynetdicom 3.0.4, Association._run_reactor


class ReactorClock:
    """`time` for pynetdicom.association: no reactor sleep on accelerated associations."""

    def __init__(self, real: ModuleType) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def sleep(self, seconds: float) -> None:
        if seconds == _REACTOR_SLEEP_S and getattr(threading.current_thread(), "_accelerated",
                                                   False):
            return  # PatientQueue.get waits for the message instead
        self._real.sleep(seconds)


def install_reactor_clock() -> None:
    """Once per process (`receiver.configure_pynetdicom`); other associations keep every sleep."""
    module: Any = pynetdicom.association
    if not isinstance(module.time, ReactorClock):
        module.time = ReactorClock(time)


def _simple_queue_of(old: queue.Queue[Any]) -> Any:
    """A SimpleQueue holding what `old` holds (the threads that use it have not started)."""
    new: queue.SimpleQueue[Any] = queue.SimpleQueue()
    while True:
        try:
            new.put(old.get(block=False))
        except queue.Empty:
            return new


def accelerate(assoc: Association, early_sync: EarlySync) -> None:
    """Switch one not-yet-started acceptor association to the event-driven waits."""
    dul, dimse = assoc.dul, assoc.dimse
    sock = dul.socket
    assert isinstance(sock, AssociationSocket) and dul.to_provider_queue.empty()
    wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
    weakref.finalize(sock, os.close, wake_fd)
    sock.__class__ = FastSocket  # adds behaviour and its read-ahead buffer
    assert isinstance(sock, FastSocket)
    sock.start_read_ahead(wake_fd)
    dul.to_provider_queue = WakingQueue(wake_fd)
    # The DUL's own event and PDU queues see only put() and get(False): the C SimpleQueue
    # does both without queue.Queue's condition variables (4 of each per PDU).
    dul.event_queue = _simple_queue_of(dul.event_queue)  # Evt5 may be queued already
    dul._recv_pdu = _simple_queue_of(dul._recv_pdu)
    dul._run_loop_delay = 0  # FastSocket.ready does the waiting
    dimse.msg_queue = PatientQueue(early_sync)
    send_store_responses_directly(assoc)
    dataset_lane.install(assoc)
    assoc._accelerated = True  # type: ignore[attr-defined]  # read by ReactorClock.sleep


class FastRequestHandler(RequestHandler):
    """pynetdicom's request handler, creating associations with the event-driven waits.

    Its server carries the receiver's `early_sync` and hears when each association's
    thread ends (see `receiver.NodeServer`).
    """

    def _create_association(self) -> Association:
        assoc = super()._create_association()
        accelerate(assoc, self.server.early_sync)  # type: ignore[attr-defined]
        run, ended = assoc.run, self.server.association_ended  # type: ignore[attr-defined]

        def run_then_report() -> None:
            try:
                run()
            finally:
                ended()

        assoc.run = run_then_report  # type: ignore[method-assign]
        return assoc
