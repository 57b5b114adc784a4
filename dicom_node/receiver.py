"""One receiving process: a pynetdicom acceptor on the node's port, or fed by its dispatcher.

With one receiving process it listens itself (`NodeServer`). With several
(`dicom.receive_processes`), which lifts the GIL ceiling of pure-Python PDU handling, the
node's process listens and `dispatch.Dispatcher` hands each connection to the process with
the fewest open associations (`HandedServer`).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing as mp
import signal
import socket
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pynetdicom import AE, _config, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import ThreadedAssociationServer

from radraft.core.db import make_engine
from radraft.core.settings import Settings
from radraft.dicom_node import file_meta, received_file
from radraft.dicom_node.disk import DiskGuard
from radraft.dicom_node.dispatch import ENDED, no_delay, receive_connection
from radraft.dicom_node.early_sync import EarlySync
from radraft.dicom_node.errors import NodeStartError
from radraft.dicom_node.fast_transport import FastRequestHandler, install_reactor_clock
from radraft.dicom_node.scp import StoreHandler, handle_echo
from radraft.dicom_node.services import NodeServices, add_service_contexts
from radraft.dicom_node.storage import InstanceStore

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


class NodeServer(ThreadedAssociationServer):
    """pynetdicom's threaded acceptor with TCP_NODELAY on every socket."""

    daemon_threads = True
    early_sync: EarlySync  # set by Receiver.start, read by FastRequestHandler

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        client, address = super().get_request()
        no_delay(client)
        return client, address

    def association_ended(self) -> None:
        """Called by each association's thread as it ends (FastRequestHandler)."""


class HandedServer(NodeServer):
    """A receiving process's server: its "listening" socket is its channel to the node's
    dispatcher, which sends connections (TCP_NODELAY already set); each association's end
    goes back on the same channel."""

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
        return connection, (str(address[0]), int(address[1]))

    def association_ended(self) -> None:
        with contextlib.suppress(OSError):  # the node is gone; nobody counts any more
            self.channel.send(ENDED)

    def shutdown(self) -> None:
        """Stop serving (once: the node's stop and a closed channel may both ask)."""
        with self._shutdown_lock:
            if self._shut_down:
                return
            self._shut_down = True
        super().shutdown()


def configure_pynetdicom() -> None:
    """Process-wide pynetdicom switches the node relies on."""
    # Receive each dataset straight to a file (large multi-frame objects never sit in RAM).
    _config.STORE_RECV_CHUNKED_DATASET = True
    # Private and unknown SOP classes (Siemens, GE) are storage too.
    _config.UNRESTRICTED_STORAGE_SERVICE = True
    # No per-PDU/per-request log handlers (0.2 ms an instance): assoc_log writes the lines.
    _config.LOG_HANDLER_LEVEL = "none"
    # Each received file's meta group written directly, not through pydicom (0.2 ms).
    file_meta.install()
    # Each received dataset's temporary file created without tempfile's overhead.
    received_file.install()
    # The association reactor's 1 ms sleep skipped on the node's own associations.
    install_reactor_clock()


def build_ae(settings: Settings) -> AE:
    """The node's application entity: AE checks, PDU size, timeouts (README "The DICOM node")."""
    dicom = settings.dicom
    ae = AE(ae_title=dicom.ae_title)
    ae.add_supported_context(Verification)
    add_service_contexts(ae)  # MPPS, storage commitment (services.py)
    # Wrong called AE: A-ASSOCIATE-RJ permanent, service-user, reason 7.
    ae.require_called_aet = True
    # Unknown calling AE: A-ASSOCIATE-RJ permanent, service-user, reason 3.
    ae.require_calling_aet = list(dicom.allowed_calling_aets)
    ae.maximum_pdu_size = dicom.maximum_pdu_size
    ae.network_timeout = dicom.network_timeout_s
    ae.dimse_timeout = dicom.network_timeout_s
    ae.acse_timeout = dicom.network_timeout_s
    ae.maximum_associations = 64
    return ae


class Receiver:
    """An acceptor storing into `settings.data_dir`, serving on its own threads."""

    def __init__(self, settings: Settings, purge: Callable[[], int],
                 channel: socket.socket | None = None) -> None:
        self.settings = settings
        self.channel = channel  # from the node's dispatcher; None: listen on the port
        self.store = InstanceStore(settings.dicom_dir)
        disk = DiskGuard(settings.data_dir, settings.dicom.min_free_bytes, purge)
        self.early_sync = EarlySync()
        self.placer = ThreadPoolExecutor(8, thread_name_prefix="placer")
        # The index's own engine: its SQLite commits skip the fsync (see make_engine).
        self.engine = make_engine(settings.database_url, pool_size=8, fsync_commits=False)
        self.handler = StoreHandler(
            self.store, self.engine, disk, uid_root=settings.site.uid_root,
            placer=self.placer, synced=self.early_sync.wait,
        )
        self.services = NodeServices(settings)
        self._server: NodeServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def start(self) -> None:
        configure_pynetdicom()
        self.store.prepare()
        ae = build_ae(self.settings)
        handlers: list[Any] = [
            (evt.EVT_C_STORE, self.handler), (evt.EVT_C_ECHO, handle_echo),
            *self.handler.assoc_log.handlers(), *self.services.handlers(),
        ]
        # Fed by the node's dispatcher, or listening on the port itself.
        extra: dict[str, Any] = {} if self.channel is None else {"channel": self.channel}
        server_class = NodeServer if self.channel is None else HandedServer
        server = ae.make_server(
            (self.settings.dicom.host, self.settings.dicom.port), ae_title=ae.ae_title,
            evt_handlers=handlers, request_handler=FastRequestHandler,
            server_class=server_class, **extra,
        )
        assert isinstance(server, NodeServer)
        server.early_sync = self.early_sync
        # As AE.start_server does: the server's shutdown() unregisters itself from the AE.
        ae._servers.append(server)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="dicom-acceptor", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
            self.early_sync.shutdown()
            self.placer.shutdown(wait=True)
            self.engine.dispose()
            self.services.close()


def _die_with_parent() -> None:
    """A receiver must not outlive the node (a SIGKILLed parent cannot stop its children)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        log.warning("prctl(PR_SET_PDEATHSIG) unavailable: receivers may outlive the node")


def receiver_process_main(
    settings: Settings, ready: Any, stop: Any, purge: Callable[[Settings], int],
    channel: socket.socket,
) -> None:
    """Entry point of one receiving process (spawned by DicomNode)."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(processName)s %(message)s")
    # pynetdicom's chunk files are created in the temp dir: keep it on the store's file
    # system so the final rename is atomic and costs no copy. This process owns it.
    tempfile.tempdir = str(settings.data_dir / "tmp")
    receiver = Receiver(settings, lambda: purge(settings), channel)
    receiver.start()
    ready.set()
    stop.wait()
    receiver.stop()


def spawn_receivers(
    settings: Settings, channels: list[socket.socket], purge: Callable[[Settings], int],
) -> tuple[list[mp.process.BaseProcess], Any]:
    """One receiving process per dispatcher channel; returns them and the event that stops
    them."""
    context = mp.get_context("spawn")
    stop = context.Event()
    processes: list[mp.process.BaseProcess] = []
    readies = []
    for index, channel in enumerate(channels):
        ready = context.Event()
        process = context.Process(
            target=receiver_process_main, args=(settings, ready, stop, purge, channel),
            name=f"dicom-receiver-{index}", daemon=True,
        )
        process.start()
        processes.append(process)
        readies.append(ready)
    for started, ready in zip(processes, readies, strict=True):
        if not ready.wait(60):
            raise NodeStartError(f"{started.name} did not start (exit code {started.exitcode})")
    return processes, stop
