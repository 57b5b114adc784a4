"""Free-space guard: purge what the retention policy allows before refusing for lack of disk."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


def free_bytes(path: Path) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


class DiskGuard:
    """Answers whether there is room for one more instance, purging once when there is not.

    `purge` runs the retention policy (radraft purge) and returns the bytes it freed; it runs
    at most once per `purge_interval_s` so a full disk does not purge on every C-STORE.
    """

    def __init__(
        self, path: Path, min_free_bytes: int, purge: Callable[[], int],
        *, purge_interval_s: float = 60.0,
    ) -> None:
        self.path = path
        self.min_free_bytes = min_free_bytes
        self._purge = purge
        self._interval = purge_interval_s
        self._last_purge = -float("inf")
        self._lock = threading.Lock()

    def has_room(self, incoming_bytes: int = 0) -> bool:
        needed = self.min_free_bytes + incoming_bytes
        if free_bytes(self.path) >= needed:
            return True
        with self._lock:
            if time.monotonic() - self._last_purge >= self._interval:
                self._last_purge = time.monotonic()
                freed = self._purge()
                log.warning("free disk below dicom.min_free_bytes: purge freed %d bytes", freed)
        return free_bytes(self.path) >= needed
