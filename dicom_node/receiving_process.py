"""Receiving processes (`dicom.receive_processes` > 1): each runs a Receiver fed by the
node's dispatcher, and dies with the node."""

from __future__ import annotations

import ctypes
import logging
import multiprocessing as mp
import signal
import socket
from collections.abc import Callable
from typing import Any

from radraft.core import log_safe
from radraft.core.settings import Settings
from radraft.dicom_node.errors import NodeStartError
from radraft.dicom_node.receiver import Receiver

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


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
    log_safe.install()  # peer values (UIDs, AE titles) cannot forge a log line
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
