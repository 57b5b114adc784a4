"""One receiving process's acceptor: pynetdicom on the node's port, or fed by its dispatcher.

With one receiving process it listens itself (`NodeServer`). With several
(`dicom.receive_processes`), which lifts the GIL ceiling of pure-Python PDU handling, the
node's process listens and `dispatch.Dispatcher` hands each connection to the process with
the fewest open associations (`HandedServer`).

`dicom.fast_receive` (default on) accelerates every association with `dicom_node.fast`, the
one layer that touches pynetdicom's internals; off, or with pynetdicom/pydicom versions
other than the pinned ones, pynetdicom's stock receive path runs, with the same statuses,
durability order and files. Both paths share what makes a door safe: a read timeout on
every connection, the per-peer association limit, free space checked as data arrives,
and partial files of ended associations removed at once.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pynetdicom import AE, _config, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from radraft.core.db import make_engine
from radraft.core.settings import Settings
from radraft.dicom_node import fast, tls
from radraft.dicom_node.peers import PeerLimit
from radraft.dicom_node.scp import StoreHandler, handle_echo
from radraft.dicom_node.servers import HandedServer, NodeServer
from radraft.dicom_node.services import NodeServices, add_service_contexts
from radraft.dicom_node.storage.disk import DiskGuard
from radraft.dicom_node.storage.files import InstanceStore, fsync_file
from radraft.dicom_node.storage.leftovers import LeftoverSweeper
from radraft.dicom_node.storage.space import SpaceWatch

log = logging.getLogger(__name__)


def configure_pynetdicom() -> None:
    """Process-wide pynetdicom switches the node relies on (pynetdicom's public `_config`)."""
    # Receive each dataset straight to a file (large multi-frame objects never sit in RAM).
    _config.STORE_RECV_CHUNKED_DATASET = True
    # Private and unknown SOP classes (Siemens, GE) are storage too.
    _config.UNRESTRICTED_STORAGE_SERVICE = True
    # No per-PDU/per-request log handlers (their cost: README): assoc_log writes the lines.
    _config.LOG_HANDLER_LEVEL = "none"


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
    ae.maximum_associations = dicom.max_associations
    return ae


class Receiver:
    """An acceptor storing into `settings.data_dir`, serving on its own threads."""

    def __init__(self, settings: Settings, purge: Callable[[], int],
                 channel: socket.socket | None = None) -> None:
        self.settings = settings
        # A receiving process fed by the node's dispatcher: the node itself says once why
        # the fast path is off (not once per process).
        self.channel = channel  # from the node's dispatcher; None: listen on the port
        self.store = InstanceStore(settings.dicom_dir)
        disk = DiskGuard(settings.data_dir, settings.dicom.min_free_bytes, purge)
        self.space = SpaceWatch(disk)
        self.early_sync = fast.EarlySync()
        # This process's received datasets (pynetdicom's temp files): its own folder, on
        # the store's file system (the final rename is atomic and costs no copy).
        self.rx_dir = settings.data_dir / "tmp" / f"rx-{os.getpid()}"
        self.sweeper = LeftoverSweeper(self.rx_dir)
        self.fast = False  # decided at start
        self.placer = ThreadPoolExecutor(8, thread_name_prefix="placer")
        # The index's own engine: its SQLite commits skip the fsync (see make_engine).
        self.engine = make_engine(settings.database_url, pool_size=8, fsync_commits=False)
        self.handler = StoreHandler(
            self.store, self.engine, disk, uid_root=settings.site.uid_root,
            placer=self.placer, synced=fsync_file, space=self.space,
            limits=settings.dicom,
        )
        self.services = NodeServices(settings)
        self._server: NodeServer | None = None
        self._thread: threading.Thread | None = None
        self._tempdir_before: str | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def _choose_path(self) -> bool:
        if not self.settings.dicom.fast_receive:
            fast.uninstall()  # a process that ran the fast path before (tests)
            log.info("DICOM receive path: pynetdicom's stock path (dicom.fast_receive off)")
            return False
        if self.settings.dicom.tls_cert:
            # The fast path reads plain TCP straight into its buffers; TLS associations take
            # pynetdicom's stock path, which reads through the TLS socket.
            fast.uninstall()
            log.info("DICOM receive path: pynetdicom's stock path (DICOM TLS is on)")
            return False
        return fast.install(log_refusal=self.channel is None)  # False: versions differ

    def start(self) -> None:
        configure_pynetdicom()
        self.fast = self._choose_path()
        self.handler.synced = self.early_sync.wait if self.fast else fsync_file
        self.store.prepare()
        self.rx_dir.mkdir(parents=True, exist_ok=True)
        self.sweeper.sweep()
        # Where pynetdicom creates each received file (process-wide: pynetdicom takes no
        # folder); given back on stop, so a node run inside another program leaves no trace.
        self._tempdir_before = tempfile.tempdir
        tempfile.tempdir = str(self.rx_dir)
        ae = build_ae(self.settings)
        handlers: list[Any] = [
            (evt.EVT_C_STORE, self.handler), (evt.EVT_C_ECHO, handle_echo),
            (evt.EVT_CONN_OPEN, self._opened), *self.handler.assoc_log.handlers(),
            *self.services.handlers(),
        ]
        if not self.fast:  # the fast path counts arrivals in its socket instead
            handlers.append((evt.EVT_DATA_RECV, self._data_received))
        if self.settings.dicom.tls_peers:
            handlers.append((evt.EVT_REQUESTED,
                             tls.identity_check(self.settings.dicom.tls_peers)))
        # Fed by the node's dispatcher, or listening on the port itself.
        extra: dict[str, Any] = {} if self.channel is None else {"channel": self.channel}
        server_class = NodeServer if self.channel is None else HandedServer
        server = ae.make_server(
            (self.settings.dicom.host, self.settings.dicom.port), ae_title=ae.ae_title,
            evt_handlers=handlers, server_class=server_class, **extra,
        )
        assert isinstance(server, NodeServer)
        server.read_timeout_s = self.settings.dicom.network_timeout_s
        server.peers = PeerLimit(self.settings.dicom.max_associations_per_peer)
        server.tls = tls.node_context(self.settings.dicom)
        server.tls_timeout_s = self.settings.dicom.network_timeout_s
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="dicom-acceptor", daemon=True
        )
        self._thread.start()

    def _opened(self, event: evt.Event) -> None:
        """EVT_CONN_OPEN: the association exists, its threads have not started."""
        assoc: Any = event.assoc
        peer = str(assoc.requestor.address)
        server = self._server
        run = assoc.run

        def run_then_clean_up() -> None:
            try:
                run()
            finally:
                if server is not None:
                    server.association_ended(peer)
                # Released associations leave nothing; aborted ones may (see leftovers).
                self.sweeper.sweep_after(assoc, collect=not assoc.is_released)

        assoc.run = run_then_clean_up
        if self.fast:
            fast.accelerate(
                assoc, early_sync=self.early_sync,
                max_pdu=self.settings.dicom.maximum_pdu_size,
                on_arrival=lambda count: self.space.arrived(assoc, count),
                discard=lambda: self.space.discard(assoc),
            )

    def _data_received(self, event: evt.Event) -> None:
        """EVT_DATA_RECV (stock path): every PDU's bytes count towards the space check."""
        self.space.arrived(event.assoc, len(event.data))

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
            self.early_sync.shutdown()
            self.placer.shutdown(wait=True)
            self.engine.dispose()
            self.services.close()
            if tempfile.tempdir == str(self.rx_dir):
                tempfile.tempdir = self._tempdir_before
