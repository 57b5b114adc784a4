"""The fsync of each received dataset, started the moment its last fragment is written.

The C-STORE response waits for the file's fsync, and storescu (like most senders) sends
nothing until it has that response. Started from the DUL thread when pynetdicom queues
the complete message, the fsync runs while the association thread wakes up, pynetdicom
prepares the event and the handler reads the header, instead of after all that.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from radraft.dicom_node.storage.files import fsync_file

# Futures nobody collected (an association aborted between queueing and serving).
_MAX_PENDING = 256


class EarlySync:
    """`start(path)` from the receiving thread; `wait(path)` in the handler. Thread-safe."""

    def __init__(self, workers: int = 4) -> None:
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="early-fsync")
        self._pending: dict[str, Future[None]] = {}
        self._lock = threading.Lock()

    def start(self, path: Path) -> None:
        try:
            future = self._pool.submit(fsync_file, path)
        except RuntimeError:
            return  # shut down (the node stops): wait() fsyncs in the handler's thread
        with self._lock:
            if len(self._pending) >= _MAX_PENDING:
                self._pending = {k: f for k, f in self._pending.items() if not f.done()}
            self._pending[str(path)] = future

    def wait(self, path: Path) -> None:
        """Return once `path` is fsynced (its OSError raised here); fsync it if not started."""
        with self._lock:
            future = self._pending.pop(str(path), None)
        if future is None:
            fsync_file(path)
        else:
            future.result()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)
