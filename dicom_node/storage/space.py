"""Free disk checked while datasets arrive, not only once a whole dataset is on disk.

A sender can stream a multi-gigabyte dataset; checking free space only when it is complete
lets one transfer fill the disk. Every `CHECK_EVERY` bytes received (by all associations
of the process) the free space is measured (`DiskGuard.has_room`, which may purge); while
it is short, every association that receives data is marked, and its current C-STORE is
answered 0xA700 when it completes (a C-STORE cannot be answered before its last fragment).
On the fast path the fragments that arrive meanwhile are not even written
(`discard`); on pynetdicom's stock path they are, and the refused file is removed at once.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any

from radraft.dicom_node.storage.disk import DiskGuard

CHECK_EVERY = 4 << 20  # bytes between two measurements of free space
_RECHECK_S = 1.0  # while short: measure again at least this often


class SpaceWatch:
    """Thread-safe; associations are held weakly."""

    def __init__(self, disk: DiskGuard) -> None:
        self._disk = disk
        self._lock = threading.Lock()
        self._since_check = 0
        self._checked_at = -float("inf")
        self.low = False
        self._marked: weakref.WeakSet[Any] = weakref.WeakSet()

    def arrived(self, assoc: Any, count: int) -> None:
        """`count` bytes of association `assoc` arrived."""
        with self._lock:
            self._since_check += count
            due = self._since_check >= CHECK_EVERY or (
                self.low and time.monotonic() - self._checked_at >= _RECHECK_S)
            if due:
                self._since_check = 0
                self._checked_at = time.monotonic()
        if due:
            # Outside the lock: has_room may purge (slow); a concurrent answer is as good.
            self.low = not self._disk.has_room(0)
        if self.low:
            with self._lock:
                self._marked.add(assoc)

    def discard(self, assoc: Any) -> bool:
        """True (and `assoc` marked) while received bytes must not be written."""
        if not self.low:
            return False
        with self._lock:
            self._marked.add(assoc)
        return True

    def take_refusal(self, assoc: Any) -> bool:
        """Whether `assoc` received data while disk was short (the mark is cleared)."""
        with self._lock:
            if assoc in self._marked:
                self._marked.discard(assoc)
                return True
            return False
