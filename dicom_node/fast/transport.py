"""Event-driven waits and bounded bulk reads for pynetdicom's acceptor threads.

storescu and most PACS send one C-STORE, wait for its response, then send the next, so
every millisecond an instance waits inside the SCP is a millisecond of throughput lost on
that association. Stock pynetdicom polls: its DUL thread sleeps 1 ms whenever the socket
has nothing to read (also while a response waits to be sent), the association thread
sleeps 1 ms between looks at the DIMSE queue, and PDUs are read 4 KiB per recv() call
(README "How the receive path is made fast" has the measured cost).

This module removes them without copying pynetdicom's state machine:
- `FastSocket.ready` waits (select) for data OR for a primitive queued for sending, up to
  `WAIT_S`, instead of answering at once and letting the DUL sleep;
- `WakingQueue` (the DUL's outgoing queue) wakes that select when a response is queued;
- `WaitingMessageQueue` (the DIMSE message queue) lets the association thread's
  non-blocking look wait `WAIT_S` for the message being received, so it runs the handler
  the moment the last fragment arrives, and starts the received file's fsync as it is queued;
- `FastSocket.recv` reads a long PDU in pieces no larger than what has already arrived
  (never a buffer of the size the peer declares), short ones out of a read-ahead buffer (one
  recv for several 16 KiB PDUs), and refuses a PDU longer than `dicom.maximum_pdu_size`;
- the DUL's event and PDU queues become `queue.SimpleQueue`s (only put and get(False)
  are used on them).
"""

from __future__ import annotations

import contextlib
import os
import queue
import select
from collections.abc import Callable
from typing import Any

from pynetdicom.transport import AssociationSocket

from radraft.dicom_node.fast.early_sync import EarlySync

# Longest a thread waits before it re-checks kill flags, timers and release requests.
WAIT_S = 0.01
_READ_AHEAD = 256 * 1024  # one recv takes every small PDU the peer has queued, up to this
_DIRECT = 64 * 1024  # a longer rest of a PDU is read straight into the PDU's own buffer
# ACSE PDUs (A-ASSOCIATE-RQ with many contexts, user identity) may exceed a small
# maximum_pdu_size, which bounds P-DATA-TF only: every PDU may have at least this.
MIN_PDU_LIMIT = 64 * 1024


class PduTooLong(OSError):
    """A peer declared a PDU longer than the node accepts: the connection is dropped.

    An OSError because pynetdicom's reader turns those into Evt17 (transport closed)."""


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


class WaitingMessageQueue(queue.Queue[Any]):
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


class FastSocket(AssociationSocket):
    """AssociationSocket whose `ready` waits for data or a wake-up, and whose recv is bulk.

    Bytes received beyond the PDU being read wait in a read-ahead buffer (`_ahead[_start:
    _end]`): with 16 KiB PDUs one recv() serves several of them, and `ready` answers from it
    without a select. Every read is bounded in time by the socket's timeout (the node sets
    `dicom.network_timeout_s` on each connection): a stalled peer raises TimeoutError,
    which pynetdicom treats as a closed connection.
    """

    _wake_fd: int
    _ahead: memoryview
    _start: int
    _end: int
    max_pdu: int  # longest PDU body accepted
    on_arrival: Callable[[int], object]  # told how many bytes each receive brought

    def start_read_ahead(self, wake_fd: int, *, max_pdu: int = MIN_PDU_LIMIT,
                         on_arrival: Callable[[int], object] = lambda _count: None) -> None:
        self._wake_fd = wake_fd
        self._ahead = memoryview(bytearray(_READ_AHEAD))
        self._start = self._end = 0
        self.max_pdu = max(max_pdu, MIN_PDU_LIMIT)
        self.on_arrival = on_arrival

    def _recv_into(self, view: memoryview, count: int) -> int:
        assert self.socket is not None
        got = self.socket.recv_into(view, count)
        if got:
            self.on_arrival(got)
        return got

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

    def check_pdu_length(self, length: int) -> None:
        """Refuse (PduTooLong) a declared PDU body longer than this association accepts."""
        if length > self.max_pdu:
            raise PduTooLong(f"peer declared a {length}-byte PDU; at most {self.max_pdu} "
                             "accepted (dicom.maximum_pdu_size)")

    def recv(self, nr_bytes: int) -> bytearray:
        """Read exactly `nr_bytes` (fewer only if the peer closed).

        pynetdicom asks for 6 bytes (a PDU header) and then for the length the header
        declares: that length is checked against `max_pdu`, and the bytes are gathered in
        pieces each no larger than what has arrived so far, so a peer that declares much and
        sends little costs little.
        """
        self.check_pdu_length(nr_bytes)
        ahead, start, end = self._ahead, self._start, self._end
        if end - start >= nr_bytes:
            self._start = start + nr_bytes
            return bytearray(ahead[start:start + nr_bytes])
        pieces: list[bytearray] = []
        received = 0
        while received < nr_bytes:
            size = min(nr_bytes - received, max(_READ_AHEAD, received))
            piece = bytearray(size)
            got = self._fill(memoryview(piece))
            received += got
            if got < size:  # the peer closed
                pieces.append(piece[:got])
                break
            pieces.append(piece)
        return pieces[0] if len(pieces) == 1 else bytearray().join(pieces)

    def _fill(self, view: memoryview) -> int:
        """Fill `view` from the read-ahead and the socket; fewer bytes only if the peer closed."""
        wanted = len(view)
        start, end = self._start, self._end
        received = min(end - start, wanted)
        view[:received] = self._ahead[start:start + received]
        self._start = start + received
        if self._start == self._end:
            self._start = self._end = 0
        while received < wanted:
            missing = wanted - received
            if missing >= _DIRECT:
                count = self._recv_into(view[received:], missing)
                taken = count
            else:
                count = self._recv_into(self._ahead, _READ_AHEAD)
                taken = min(count, missing)
                view[received:received + taken] = self._ahead[:taken]
                self._start, self._end = taken, count
            if count == 0:
                return received
            received += taken
        return received

    def peek(self, count: int) -> memoryview | None:
        """The next `count` bytes, left unread (received as needed); None if the peer closed.

        Only ask for bytes the peer has promised (a PDU header, or items inside a PDU whose
        length it declared): this waits for them like `recv` does.
        """
        if self._end - self._start < count:
            kept = bytes(self._ahead[self._start:self._end])  # a few bytes
            self._ahead[:len(kept)] = kept
            self._start, self._end = 0, len(kept)
            while self._end < count:
                got = self._recv_into(self._ahead[self._end:], _READ_AHEAD - self._end)
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
        done = min(self._end - self._start, count)
        if done:
            write(self._ahead[self._start:self._start + done])
            self._start += done
        while done < count:
            got = self._recv_into(self._ahead, _READ_AHEAD)
            if got == 0:
                self._start = self._end = 0
                return done
            taken = min(got, count - done)
            write(self._ahead[:taken])
            self._start, self._end = taken, got
            done += taken
        return done


def simple_queue_of(old: queue.Queue[Any]) -> Any:
    """A SimpleQueue holding what `old` holds (the threads that use it have not started)."""
    new: queue.SimpleQueue[Any] = queue.SimpleQueue()
    while True:
        try:
            new.put(old.get(block=False))
        except queue.Empty:
            return new
