"""The node's socket servers: pynetdicom's threaded acceptor with the node's rules for
every connection (TCP_NODELAY, a read timeout, the per-peer association limit), listening
itself (`NodeServer`) or fed by the node's dispatcher (`HandedServer`)."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import ssl
import threading
from typing import Any

from pynetdicom.transport import ThreadedAssociationServer

from radraft.dicom_node import tls
from radraft.dicom_node.dispatch import ENDED, no_delay, receive_connection
from radraft.dicom_node.peers import PeerLimit, reject


class NodeServer(ThreadedAssociationServer):
    """pynetdicom's threaded acceptor with the node's rules for every connection.

    `read_timeout_s` bounds every read of a connection (a peer stalled inside a PDU is
    dropped after it); `peers` limits open associations per calling address (set by the
    Receiver before serving).
    """

    daemon_threads = True
    read_timeout_s: float = 60.0
    peers: PeerLimit = PeerLimit(1 << 30)
    tls: ssl.SSLContext | None = None  # DICOM TLS (dicom_node.tls), set by Receiver.start
    tls_timeout_s: float = 60.0

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        client, address = super().get_request()
        no_delay(client)
        return tls.wrap(client, self.tls, self.tls_timeout_s), address

    def verify_request(self, request: Any, client_address: Any) -> bool:
        request.settimeout(self.read_timeout_s)
        peer = str(client_address[0])
        if self.peers.admit(peer):
            return True
        reject(request, peer, self.peers.per_peer)
        return False

    def association_ended(self, peer: str) -> None:
        """Called by each association's thread as it ends (see Receiver)."""
        self.peers.release(peer)

    def shutdown(self) -> None:
        # socketserver's own shutdown: pynetdicom's also unregisters the server from an AE
        # list that only AE.start_server fills, and the node builds it with make_server.
        socketserver.BaseServer.shutdown(self)


class HandedServer(NodeServer):
    """A receiving process's server: its "listening" socket is its channel to the node's
    dispatcher, which sends connections (TCP_NODELAY already set); each association's end
    goes back on the same channel with the peer's address (the dispatcher counts per peer)."""

    def __init__(self, *args: Any, channel: socket.socket, **kwargs: Any) -> None:
        self.channel = channel
        self._shutdown_lock = threading.Lock()
        self._shut_down = False
        super().__init__(*args, **kwargs)

    def server_bind(self) -> None:
        assert self.socket is not None
        self.socket.close()  # the TCP socket socketserver made: the node listens instead
        self.socket = self.channel

    def server_activate(self) -> None:
        pass

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        connection = receive_connection(self.channel)
        if connection is None:
            # The node is gone (PR_SET_PDEATHSIG ends this process too): stop serving.
            threading.Thread(target=self.shutdown, daemon=True).start()
            raise OSError("the node's dispatcher closed the channel")
        address = connection.getpeername()
        return (tls.wrap(connection, self.tls, self.tls_timeout_s),
                (str(address[0]), int(address[1])))

    def association_ended(self, peer: str) -> None:
        super().association_ended(peer)
        with contextlib.suppress(OSError):  # the node is gone; nobody counts any more
            self.channel.send(ENDED + peer.encode("ascii", "replace"))

    def shutdown(self) -> None:
        """Stop serving (once: the node's stop and a closed channel may both ask)."""
        with self._shutdown_lock:
            if self._shut_down:
                return
            self._shut_down = True
        super().shutdown()
