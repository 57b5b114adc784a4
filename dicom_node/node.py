"""The DICOM node: receivers, index repair at start, and the stability monitor.

The node knows nothing of Celery: it is handed `on_stable` and calls it once per stable
study version (DESIGN.md "Packages").
"""

from __future__ import annotations

import logging
import multiprocessing as mp
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from radraft.core.settings import Settings
from radraft.dicom_node import fast, tls
from radraft.dicom_node.commitment_report import CommitmentReporter
from radraft.dicom_node.completeness import CompletenessMonitor
from radraft.dicom_node.dispatch import Dispatcher
from radraft.dicom_node.receiver import Receiver
from radraft.dicom_node.receiving_process import spawn_receivers
from radraft.dicom_node.rules.watch import RulesWatcher
from radraft.dicom_node.stability import OnStable, StabilityMonitor
from radraft.dicom_node.storage.files import InstanceStore
from radraft.dicom_node.storage.purge import purge_for_settings
from radraft.dicom_node.storage.repair import repair_index

log = logging.getLogger(__name__)


class DicomNode:
    """C-STORE/C-ECHO on `dicom.host:port` plus the stability monitor. start() / stop()."""

    name = "dicom-node"

    def __init__(
        self, settings: Settings, sessions: sessionmaker[Session], on_stable: OnStable,
        *, poll_interval_s: float | None = None, rules: RulesWatcher | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.monitor = StabilityMonitor(
            sessions, on_stable, stable_seconds=settings.dicom.stable_seconds,
            poll_interval_s=poll_interval_s,
        )
        # MPPS and complete_when announce through the same monitor (once per version).
        self.completeness = CompletenessMonitor(
            sessions, self.monitor.announce_now, settings.dicom, rules=rules)
        self.commitment = CommitmentReporter(settings, sessions)
        self._receiver: Receiver | None = None
        self._dispatcher: Dispatcher | None = None
        self._processes: list[mp.process.BaseProcess] = []
        self._stop_processes: Any = None

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        if self._receiver is not None:
            return self._receiver.port
        if self._dispatcher is not None:
            return self._dispatcher.port
        return self.settings.dicom.port

    def start(self) -> None:
        tls.node_context(self.settings.dicom)  # a TLS misconfiguration fails here, loudly
        store = InstanceStore(self.settings.dicom_dir)
        store.prepare()
        report = repair_index(store, self.sessions, uid_root=self.settings.site.uid_root)
        log.info(
            "store checked: %d studies, %d files indexed by repair",
            report.studies_checked, report.indexed,
        )
        count = self.settings.dicom.receive_processes
        if count == 1:
            self._receiver = Receiver(self.settings, lambda: purge_for_settings(self.settings))
            self._receiver.start()
        else:
            dicom = self.settings.dicom
            if dicom.fast_receive:
                fast.log_refusal_once()  # the receiving processes stay quiet about it
            self._dispatcher = Dispatcher(dicom.host, dicom.port, count,
                                          max_per_peer=dicom.max_associations_per_peer)
            try:
                self._processes, self._stop_processes = spawn_receivers(
                    self.settings, self._dispatcher.receiver_ends, purge_for_settings
                )
            except BaseException:
                self._dispatcher.close()
                raise
            self._dispatcher.start()
        self.monitor.start()
        self.completeness.start()
        self.commitment.start()
        log.info(
            "DICOM node %s listening on %s:%d (%d receiving process%s)",
            self.settings.dicom.ae_title, self.settings.dicom.host, self.port, count,
            "" if count == 1 else "es",
        )

    def stop(self) -> None:
        self.commitment.stop()
        self.completeness.stop()
        self.monitor.stop()
        if self._receiver is not None:
            self._receiver.stop()
            self._receiver = None
        if self._dispatcher is not None:
            self._dispatcher.stop_accepting()
        if self._stop_processes is not None:
            self._stop_processes.set()
            for process in self._processes:
                process.join(timeout=15)
                if process.is_alive():
                    process.kill()
            self._processes = []
        if self._dispatcher is not None:
            self._dispatcher.close()
            self._dispatcher = None
