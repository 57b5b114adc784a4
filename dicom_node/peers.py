"""At most `dicom.max_associations_per_peer` open associations per calling address.

Without it, one host holding idle associations could take every one of the node's
association slots and lock the real senders out. An association over the limit is
rejected before pynetdicom sees it: A-ASSOCIATE-RJ (transient, service provider
(presentation), local limit exceeded; PS3.8 9.3.4), then the connection is closed.
Idle associations end after `dicom.network_timeout_s` (pynetdicom's idle timer).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections import Counter

log = logging.getLogger(__name__)

# A-ASSOCIATE-RJ: type 3, length 4; result 2 (rejected-transient), source 3 (service
# provider, presentation related), reason 2 (local limit exceeded).
REJECT_LIMIT = bytes([0x03, 0x00, 0, 0, 0, 4, 0x00, 0x02, 0x03, 0x02])


class PeerLimit:
    """Counts open associations per peer address. Thread-safe."""

    def __init__(self, per_peer: int) -> None:
        self.per_peer = per_peer
        self._open: Counter[str] = Counter()
        self._lock = threading.Lock()

    def admit(self, peer: str) -> bool:
        with self._lock:
            if self._open[peer] >= self.per_peer:
                return False
            self._open[peer] += 1
            return True

    def release(self, peer: str) -> None:
        with self._lock:
            self._open[peer] -= 1
            if self._open[peer] <= 0:
                del self._open[peer]

    def open_count(self, peer: str) -> int:
        with self._lock:
            return self._open[peer]


def reject(connection: socket.socket, peer: str, limit: int) -> None:
    """Answer an association over the limit with A-ASSOCIATE-RJ and close (never blocks
    long: the connection is a peer's we are refusing)."""
    log.warning("association from %s rejected: %d already open from that address "
                "(dicom.max_associations_per_peer)", peer, limit)
    with contextlib.suppress(OSError):
        connection.settimeout(1.0)
        connection.sendall(REJECT_LIMIT)
        connection.shutdown(socket.SHUT_WR)
    connection.close()
