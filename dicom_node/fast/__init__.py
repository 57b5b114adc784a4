"""The node's optional fast receive path: the ONLY place radraft touches pynetdicom's or
pydicom's internals (README "How the receive path is made fast").

Two calls:
- `install()`, once per process: checks that pynetdicom and pydicom are the versions this
  layer was written against (`PINNED`) and patches their module globals (the received file,
  its File Meta Information, the reactor's poll sleep). With any other version it patches
  nothing, logs once why, and returns False: the node then runs pynetdicom's stock path.
- `accelerate(assoc, ...)`, per association, before its threads start: the event-driven
  waits, the bounded bulk socket, direct C-STORE responses and direct dataset writes.

`uninstall()` puts the stock globals back (a process switching to the stock path: tests).
Every patch point has a wiring test (tests/unit/test_node_fast_wiring.py): the attribute it
replaces still exists upstream with the shape assumed, and after install the replacement is
what pynetdicom calls.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pydicom
import pynetdicom
import pynetdicom.association
import pynetdicom.dimse_messages
from pynetdicom.transport import AssociationSocket

from radraft.dicom_node.fast import direct_write, file_meta, received_file
from radraft.dicom_node.fast.early_sync import EarlySync
from radraft.dicom_node.fast.reactor import TimeWithoutReactorSleep
from radraft.dicom_node.fast.store_response import send_store_responses_directly
from radraft.dicom_node.fast.transport import (
    FastSocket,
    WaitingMessageQueue,
    WakingQueue,
    simple_queue_of,
)

if TYPE_CHECKING:
    from pynetdicom.association import Association

__all__ = ["PINNED", "EarlySync", "accelerate", "install", "installed", "log_refusal_once",
           "uninstall", "version_mismatch"]

log = logging.getLogger(__name__)

# The versions whose internals this package was written against and tested with.
PINNED = {"pynetdicom": "3.0.4", "pydicom": "3.0.1"}

_lock = threading.Lock()
_installed = False
_refusal_logged = False
# Module globals replaced by install(): (module, attribute, stock value).
_DIMSE_MESSAGES: Any = pynetdicom.dimse_messages
_ASSOCIATION: Any = pynetdicom.association
_STOCK: list[tuple[Any, str, Any]] = [
    (_DIMSE_MESSAGES, name, getattr(_DIMSE_MESSAGES, name))
    for name in ("NamedTemporaryFile", "create_file_meta", "write_file_meta_info")
] + [(_ASSOCIATION, "time", _ASSOCIATION.time)]


def version_mismatch() -> str | None:
    """Why the fast path must not be installed (a library version differs), or None."""
    found = {"pynetdicom": str(pynetdicom.__version__), "pydicom": str(pydicom.__version__)}
    wrong = [f"{name} {found[name]} (written for {want})"
             for name, want in PINNED.items() if found[name] != want]
    return ", ".join(wrong) or None


def installed() -> bool:
    return _installed


def log_refusal_once() -> bool:
    """Log (once per process) why the fast path cannot be installed; False if it can."""
    global _refusal_logged
    reason = version_mismatch()
    if reason is None:
        return False
    if not _refusal_logged:
        _refusal_logged = True
        log.warning("DICOM fast receive path not installed: %s; using pynetdicom's "
                    "stock receive path", reason)
    return True


def install(*, log_refusal: bool = True) -> bool:
    """Patch pynetdicom for the fast path, once per process; False when the installed
    pynetdicom/pydicom are not the pinned versions (logged once, unless `log_refusal` is
    False: a receiving process whose node already said so)."""
    global _installed
    with _lock:
        if _installed:
            return True
        if version_mismatch() is not None:
            if log_refusal:
                log_refusal_once()
            return False
        # Each received dataset's temporary file created without tempfile's overhead.
        _DIMSE_MESSAGES.NamedTemporaryFile = received_file.received_file
        # Each received file's meta group written directly, not through pydicom.
        _DIMSE_MESSAGES.create_file_meta = file_meta.create_file_meta
        _DIMSE_MESSAGES.write_file_meta_info = file_meta.write_file_meta_info
        # The association reactor's 1 ms sleep skipped on the node's own associations.
        _ASSOCIATION.time = TimeWithoutReactorSleep(time)
        _installed = True
        return True


def uninstall() -> None:
    """Put pynetdicom's own module globals back (no accelerated association may be running)."""
    global _installed
    with _lock:
        for module, name, stock in _STOCK:
            setattr(module, name, stock)
        _installed = False


def accelerate(
    assoc: Association, *, early_sync: EarlySync, max_pdu: int,
    on_arrival: Callable[[int], object], discard: Callable[[], bool],
) -> None:
    """Switch one not-yet-started acceptor association to the fast path (after install()).

    `max_pdu`: the longest PDU body accepted (longer: the connection is dropped);
    `on_arrival(n)`: told of every n bytes received; `discard()`: True while received
    dataset bytes must not be written (disk short: the C-STORE will be refused).
    """
    if not _installed:
        raise RuntimeError("fast.accelerate() before a successful fast.install()")
    dul, dimse = assoc.dul, assoc.dimse
    sock = dul.socket
    if not isinstance(sock, AssociationSocket) or not dul.to_provider_queue.empty():
        raise RuntimeError("fast.accelerate() needs a new acceptor association")
    wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
    weakref.finalize(sock, os.close, wake_fd)
    sock.__class__ = FastSocket  # adds behaviour and its read-ahead buffer
    assert isinstance(sock, FastSocket)
    sock.start_read_ahead(wake_fd, max_pdu=max_pdu, on_arrival=on_arrival)
    dul.to_provider_queue = WakingQueue(wake_fd)
    # The DUL's own event and PDU queues see only put() and get(False): the C SimpleQueue
    # does both without queue.Queue's condition variables (4 of each per PDU).
    dul.event_queue = simple_queue_of(dul.event_queue)  # Evt5 may be queued already
    dul._recv_pdu = simple_queue_of(dul._recv_pdu)
    dul._run_loop_delay = 0  # FastSocket.ready does the waiting
    dimse.msg_queue = WaitingMessageQueue(early_sync)
    send_store_responses_directly(assoc)
    direct_write.install(assoc, discard)
    assoc._accelerated = True  # type: ignore[attr-defined]  # read by the reactor's time
