"""Temporary files of associations that ended without finishing a dataset, removed at once.

Each receiving process keeps its received datasets in a folder of its own
(`<data_dir>/tmp/rx-<pid>`). A dataset cut short by an abort or a dropped connection
leaves its file behind, with patient data in it. When an association ends, every file of
that folder that no open descriptor of this process refers to is removed: a file being
received, or received and waiting for its handler, is open; a finished one was renamed
into the store. A file still open after its association aborted is only held by the dead
association's objects, which a garbage collection closes. Nothing here reads pynetdicom's
internals, so the stock path gets the same clean-up.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import weakref
from pathlib import Path

log = logging.getLogger(__name__)


def open_paths() -> set[str]:
    """Paths this process holds open (Linux /proc)."""
    found: set[str] = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            found.add(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            continue  # closed meanwhile
    return found


class LeftoverSweeper:
    """Removes unheld files of `folder` (this process's own received-dataset folder)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()

    def sweep(self, *, collect: bool = False) -> int:
        """Remove every regular file of the folder not held open; with `collect`, run a
        garbage collection first if some are (an aborted association's objects)."""
        with self._lock:
            removed = self._remove_unheld()
            if collect and self._held():
                gc.collect()
                removed += self._remove_unheld()
        if removed:
            log.info("removed %d partial received file(s) of ended associations", removed)
        return removed

    def _files(self) -> list[Path]:
        try:
            return [p for p in self.folder.iterdir() if p.is_file()]
        except FileNotFoundError:
            return []

    def _held(self) -> bool:
        held = open_paths()
        return any(str(p) in held for p in self._files())

    def _remove_unheld(self) -> int:
        files = self._files()
        if not files:
            return 0
        held = open_paths()
        removed = 0
        for path in files:
            if str(path) not in held:
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def sweep_after(self, thread: threading.Thread, *, collect: bool) -> None:
        """Sweep once `thread` (an ending association's own) has finished: its objects
        cannot be collected while it still runs."""
        ref = weakref.ref(thread)
        del thread  # only the weak reference travels to the helper thread

        def wait_then_sweep() -> None:
            ended = ref()
            if ended is not None:
                ended.join(30)
                del ended
            self.sweep(collect=collect)

        threading.Thread(target=wait_then_sweep, name="rx-sweep", daemon=True).start()
