"""Associations spread over the receiving processes: each to the one with the fewest open.

With `dicom.receive_processes` > 1 the node's own process listens and accepts; every
connection goes, as a file descriptor over a Unix socket (SCM_RIGHTS), to the receiving
process with the fewest open associations, ties to the one that got a connection least
recently. A receiver writes one byte back when an association ends. SO_REUSEPORT, the
alternative, hashes each connection's addresses to a process: four associations over four
processes land on four different ones only 4!/4⁴ ≈ 9% of the time, and the process that
gets two or three, bound by its GIL, sets the pace of the whole transfer.

A receiver whose channel is closed (it died) gets no more connections; when none is left,
connections are refused by closing them (the sender sees the association fail, nothing is
acknowledged).
"""

from __future__ import annotations

import logging
import selectors
import socket
import threading

from radraft.dicom_node.errors import NodeStartError
from radraft.dicom_node.peers import PeerLimit, reject

log = logging.getLogger(__name__)

ENDED = b"E"  # receiver → node: one association ended (followed by the peer's address)
_HANDED = b"C"  # node → receiver: the attached descriptor is a new connection


def no_delay(connection: socket.socket) -> None:
    """TCP_NODELAY: Nagle against delayed ACKs caps small-PDU transfers near 20 instances/s."""
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def receive_connection(channel: socket.socket) -> socket.socket | None:
    """The next connection handed over `channel` (a receiver's end); None once it closed."""
    message, fds, _flags, _address = socket.recv_fds(channel, 16, 4)
    connections = [socket.socket(fileno=fd) for fd in fds]
    if message == _HANDED and len(connections) == 1:
        return connections[0]
    for extra in connections:
        extra.close()
    if not message:
        return None
    raise ConnectionError(f"unexpected message on the node's channel: {message!r}")


class Dispatcher:
    """Listens on (host, port) and hands each connection to the least busy of `receivers`.

    `receiver_ends[i]` goes to receiving process i (`HandedServer`); `start()` closes the
    node's copies of them once the processes hold theirs.
    """

    def __init__(self, host: str, port: int, receivers: int,
                 *, max_per_peer: int = 1 << 30) -> None:
        if receivers < 1:
            raise ValueError("a dispatcher needs at least one receiving process")
        try:
            self.listener = socket.create_server((host, port), backlog=128)
        except OSError as exc:
            raise NodeStartError(f"cannot listen on {host}:{port}: {exc}") from exc
        # SOCK_SEQPACKET: message boundaries kept, descriptors travel with their message.
        pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                 for _ in range(receivers)]
        self.channels = [node for node, _receiver in pairs]
        self.receiver_ends = [receiver for _node, receiver in pairs]
        self.open = [0] * receivers  # associations each receiver holds
        self.handed = [0] * receivers  # when each last got one (a counter)
        self.alive = [True] * receivers
        self.peers = PeerLimit(max_per_peer)  # open associations per calling address
        self._count = 0
        self._lock = threading.Lock()
        self._wake_read, self._wake_write = socket.socketpair()
        self._thread = threading.Thread(target=self._run, name="dicom-dispatch", daemon=True)

    @property
    def port(self) -> int:
        return int(self.listener.getsockname()[1])

    def start(self) -> None:
        """Dispatch (connections that arrived meanwhile waited in the listen backlog)."""
        for end in self.receiver_ends:
            end.close()
        self._thread.start()

    def stop_accepting(self) -> None:
        """No new connections (the receivers finish what they hold)."""
        if self._thread.is_alive():
            self._wake_write.send(b"x")
            self._thread.join(10)
        self.listener.close()

    def close(self) -> None:
        """After the receivers stopped: their channels and the rest."""
        self.stop_accepting()
        for channel in [*self.channels, *self.receiver_ends]:
            channel.close()
        self._wake_read.close()
        self._wake_write.close()

    def _run(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self.listener, selectors.EVENT_READ, -1)
            selector.register(self._wake_read, selectors.EVENT_READ, -2)
            for index, channel in enumerate(self.channels):
                selector.register(channel, selectors.EVENT_READ, index)
            while True:
                for key, _events in selector.select():
                    if key.data == -2:
                        return
                    if key.data == -1:
                        self._accept()
                    elif not self._ended(key.data):
                        selector.unregister(self.channels[key.data])

    def _accept(self) -> None:
        try:
            connection, address = self.listener.accept()
        except OSError as exc:  # e.g. EMFILE, or a connection reset while queued
            log.warning("accept failed: %s", exc)
            return
        peer = str(address[0])
        if not self.peers.admit(peer):
            reject(connection, peer, self.peers.per_peer)
            return
        with connection:
            no_delay(connection)
            while (index := self.choose()) is not None:
                try:
                    socket.send_fds(self.channels[index], [_HANDED], [connection.fileno()])
                except OSError as exc:
                    log.error("receiving process %d is gone (%s): no more associations to it",
                              index, exc)
                    self.alive[index] = False
                    continue
                with self._lock:
                    self.open[index] += 1
                return
            self.peers.release(peer)
            log.error("no receiving process left: connection closed")

    def choose(self) -> int | None:
        """The living receiver with the fewest open associations (then the least recent)."""
        with self._lock:
            living = [i for i in range(len(self.channels)) if self.alive[i]]
            if not living:
                return None
            index = min(living, key=lambda i: (self.open[i], self.handed[i]))
            self._count += 1
            self.handed[index] = self._count
            return index

    def _ended(self, index: int) -> bool:
        """Read one message from receiver `index`; False once its channel closed."""
        try:
            message = self.channels[index].recv(64)
        except OSError:
            message = b""
        if message.startswith(ENDED):
            with self._lock:
                self.open[index] = max(0, self.open[index] - 1)
            peer = message[len(ENDED):].decode("ascii", "replace")
            if peer:
                self.peers.release(peer)
            return True
        if message:
            log.warning("receiving process %d sent %r", index, message)
            return True
        log.error("receiving process %d closed its channel: no more associations to it", index)
        self.alive[index] = False
        return False
