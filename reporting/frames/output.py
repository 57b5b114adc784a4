"""The output frames array, its pages populated by the threads that write them.

A page fault costs 20-40 µs on the virtual machines measured here, so writing a gigabyte
of fresh frames page by page costs seconds; the kernel populates a range in bulk much
faster (madvise MADV_POPULATE_WRITE: 0.5-0.9 s of system time per GiB). Each render
thread populates the frames it is about to write, so that work is shared by the threads
and overlaps the rendering instead of running alone before it. The call goes through
ctypes, which releases the GIL (the mmap module's madvise and mmap(MAP_POPULATE) hold it,
which stalls every other thread). Transparent huge pages were tried: 0.1 s on a quiet
machine, 1.5-7 s of system time while another tenant held most of the memory, so they
are not asked for.
"""

from __future__ import annotations

import ctypes
import mmap
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

_MADV_POPULATE_WRITE = 23  # Linux >= 5.14
_PAGE = mmap.PAGESIZE
_SMALL = 64 << 20  # below this, plain numpy memory (faults are few)


def _madvise() -> Callable[[int, int, int], int] | None:
    try:
        function = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


class FrameBuffer:
    """T × H × W × 3 uint8 frames; `prepare(t)` populates frame t's pages (thread-safe)."""

    def __init__(self, shape: tuple[int, int, int, int]) -> None:
        nbytes = int(np.prod(shape))
        self._frame_bytes = int(np.prod(shape[1:]))
        self._address = 0
        self._madvise: Callable[[int, int, int], int] | None = None
        if nbytes < _SMALL:
            self.frames: npt.NDArray[np.uint8] = np.empty(shape, dtype=np.uint8)
            return
        memory = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self._madvise = _madvise()
        self._address = ctypes.addressof(ctypes.c_char.from_buffer(memory))
        if self._madvise is None or self._madvise(self._address, _PAGE,
                                                  _MADV_POPULATE_WRITE) != 0:
            # Older kernel: everything now, in one call (holding the GIL, sadly).
            self._madvise = None
            populate = getattr(mmap, "MAP_POPULATE", 0)
            memory = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
                               | populate)
        self.frames = np.frombuffer(memory, dtype=np.uint8).reshape(shape)

    def prepare(self, index: int) -> None:
        """Populate the pages of frame `index` before it is written (no data changes)."""
        if self._madvise is None:
            return
        start = self._address + index * self._frame_bytes
        first = start - start % _PAGE
        stop = start + self._frame_bytes
        self._madvise(first, stop - first, _MADV_POPULATE_WRITE)
