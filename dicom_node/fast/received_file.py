"""The temporary file each received dataset is written to, created cheaply.

In chunked-receive mode pynetdicom creates a `tempfile.NamedTemporaryFile` per C-STORE
(random name, retry loop, a wrapper that forwards every write through `__getattr__`) and
writes each fragment through a buffer it flushes at once (cost: README). `fast.install()`
gives it instead an unbuffered file created with O_EXCL under a name unique to the
process (pid and a counter), in the same temporary folder, with the same interface
(`name`, `file.flush()`, `write`, `close`). pynetdicom still removes the file after the
handler (a missing file is no error: the handler renamed it into the store).
"""

from __future__ import annotations

import io
import itertools
import os
import tempfile
from typing import Any

_serial = itertools.count()  # next() on a count is atomic under the GIL


class ReceivedFile(io.FileIO):
    """An unbuffered, exclusively created file; `file` is itself (pynetdicom flushes it)."""

    def __init__(self, path: str) -> None:
        super().__init__(path, "xb")

    @property
    def file(self) -> ReceivedFile:
        return self

    def write(self, data: Any) -> int:
        """All of `data` (a raw write may be short)."""
        view = memoryview(data).cast("B")
        total = len(view)
        while view:
            written = super().write(view)
            if not written:
                raise OSError(f"{self.name}: no bytes written")
            view = view[written:]
        return total


def received_file(delete: bool = False, mode: str = "wb", suffix: str = ".dcm") -> ReceivedFile:
    """What pynetdicom's `NamedTemporaryFile(delete=False, mode="wb", suffix=...)` returns."""
    if delete or mode != "wb":
        raise ValueError("received_file only stands in for pynetdicom's own call")
    folder = tempfile.gettempdir()
    while True:
        path = os.path.join(folder, f"rx-{os.getpid()}-{next(_serial)}{suffix}")
        try:
            return ReceivedFile(path)
        except FileExistsError:
            continue  # a leftover of an earlier process with the same pid

