"""The instance store: `<data_dir>/dicom/<study>/<series>/<sop>.dcm`, written durably.

Durability contract (DESIGN.md "Identity, idempotency, durability"): the received bytes are
fsynced, renamed into place (atomic: a reader sees the old copy or the new one, never half a
file), the directory is fsynced (the rename itself survives power loss), and only then does the
caller commit the index row and answer 0x0000.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

_SAFE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.\-_]{0,63}$")
TMP_SUFFIX = ".part"


def safe_name(uid: str) -> str:
    """A file name for `uid`: the UID itself when it is safe, else a digest of it."""
    if _SAFE.match(uid) and ".." not in uid:
        return uid
    return "x" + hashlib.sha256(uid.encode()).hexdigest()[:40]


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class InstanceStore:
    """Places received files into the store, durably. Thread-safe."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp_dir = root.parent / "tmp"
        self._known_dirs: set[Path] = set()
        self._lock = threading.Lock()

    def prepare(self) -> None:
        """Create the store and its temporary folder (same file system: rename is atomic)."""
        for folder in (self.root, self.tmp_dir):
            folder.mkdir(parents=True, exist_ok=True)
        fsync_dir(self.root.parent)

    def path_for(self, study_uid: str, series_uid: str, sop_uid: str) -> Path:
        folder = self.root / safe_name(study_uid) / safe_name(series_uid)
        return folder / f"{safe_name(sop_uid)}.dcm"

    def place(
        self, received: Path, dest: Path, *, synced: Callable[[Path], None] = fsync_file,
        sync_dir: bool = True,
    ) -> None:
        """Move the received file to `dest`: fsync file, rename, fsync the directory.

        `synced(path)` returns once the file's bytes are on disk (an fsync started early).
        `sync_dir=False`: the caller fsyncs the directory itself before it commits (once for
        a batch of files placed in one directory).
        """
        self._ensure_dir(dest.parent)
        if not self._same_device(received):
            received = self._copy_local(received)
            synced = fsync_file
        synced(received)
        try:
            os.replace(received, dest)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            received = self._copy_local(received)
            fsync_file(received)
            os.replace(received, dest)
        if sync_dir:
            fsync_dir(dest.parent)

    def _same_device(self, path: Path) -> bool:
        return os.stat(path).st_dev == os.stat(self.root).st_dev

    def _copy_local(self, source: Path) -> Path:
        """Copy a file received on another file system next to the store first."""
        local = self.tmp_dir / f"{source.name}.{threading.get_ident()}{TMP_SUFFIX}"
        shutil.copyfile(source, local)
        return local

    def _ensure_dir(self, folder: Path) -> None:
        if folder in self._known_dirs:
            return
        with self._lock:
            # A new directory's own entry must reach the disk too: fsync each new parent.
            missing = []
            walk = folder
            while not walk.exists() and walk != self.root:
                missing.append(walk)
                walk = walk.parent
            for new in reversed(missing):
                with contextlib.suppress(FileExistsError):
                    new.mkdir()
                fsync_dir(new.parent)
            self._known_dirs.add(folder)

    def forget_dir(self, folder: Path) -> None:
        """Purge removed `folder`: it must be created (and fsynced) again when needed."""
        with self._lock:
            self._known_dirs = {d for d in self._known_dirs if not d.is_relative_to(folder)}

    def clean_tmp(self) -> int:
        """Remove leftovers of transfers cut short by a crash (never acknowledged), the
        receiving processes' own folders (`rx-<pid>`) included; before any receiver starts."""
        removed = 0
        for leftover in sorted(self.tmp_dir.rglob("*"), reverse=True):  # files before dirs
            if leftover.is_file() or leftover.is_symlink():
                leftover.unlink(missing_ok=True)
                removed += 1
            elif leftover.is_dir():
                with contextlib.suppress(OSError):
                    leftover.rmdir()
        return removed
