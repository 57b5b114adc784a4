"""One log line when an association starts and one when it ends, with what it stored.

pynetdicom's own per-PDU and per-request log handlers are switched off in the node (their
cost: README); these lines are what a PACS admin reads instead. They
carry AE titles, addresses and counts, never patient data.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import Counter
from typing import Any

from pynetdicom import events as evt

from radraft.dicom_node.errors import STATUS_SUCCESS

log = logging.getLogger(__name__)


class AssociationLog:
    """Counts C-STORE outcomes per association; its methods are pynetdicom event handlers."""

    def __init__(self) -> None:
        self._counts: weakref.WeakKeyDictionary[Any, Counter[int]] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def tally(self, assoc: Any, status: int) -> None:
        with self._lock:
            self._counts.setdefault(assoc, Counter())[status] += 1

    def handlers(self) -> list[tuple[evt.NotificationEvent, Any]]:
        return [(evt.EVT_ACCEPTED, self.accepted), (evt.EVT_REJECTED, self.rejected),
                (evt.EVT_RELEASED, self.ended), (evt.EVT_ABORTED, self.ended)]

    @staticmethod
    def _peer(event: evt.Event) -> str:
        requestor = event.assoc.requestor
        return f"{str(requestor.ae_title).strip()} ({requestor.address}:{requestor.port})"

    def accepted(self, event: evt.Event) -> None:
        log.info("association from %s accepted", self._peer(event))

    def rejected(self, event: evt.Event) -> None:
        log.warning("association from %s rejected", self._peer(event))

    def ended(self, event: evt.Event) -> None:
        with self._lock:
            counts = self._counts.pop(event.assoc, Counter())
        stored = counts.pop(STATUS_SUCCESS, 0)
        refused = ", ".join(f"{n} x 0x{status:04X}" for status, n in sorted(counts.items()))
        how = "released" if event.event is evt.EVT_RELEASED else "aborted"
        log.info("association from %s %s: %d stored%s", self._peer(event), how, stored,
                 f", refused {refused}" if refused else "")
