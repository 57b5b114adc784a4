"""Which slice kernel renders: the native extension when it was built, else numpy + Pillow.

The extension (`_slice_kernel.c`) is optional: `pip install` without a C compiler still
installs radraft, and the frames then come from `slice_fallback` (the same bytes, slower).
`RADRAFT_SLICE_KERNEL=python` uses the fallback even where the extension exists (tests,
or to rule the extension out); it is read at each call.
"""

from __future__ import annotations

import logging
import os
from types import ModuleType
from typing import Any

from radraft.reporting.frames import slice_fallback

log = logging.getLogger(__name__)

FORCE_ENV = "RADRAFT_SLICE_KERNEL"  # "python": the numpy + Pillow fallback

native: ModuleType | None
try:
    from radraft.reporting.frames import _slice_kernel as native
except ImportError as exc:  # an install without a C compiler, or a checkout never built
    native = None
    _missing = str(exc)
else:
    _missing = ""

_warned = False


def active() -> str:
    """"native" or "python": the kernel the next `render` call uses."""
    if native is None or os.environ.get(FORCE_ENV, "").strip().lower() == "python":
        return "python"
    return "native"


def render(src: Any, bits: int, lut: Any, h_axis: Any, v_axis: Any, out: Any, targets: Any,
           offset: int, frame_size: int, top: int, left: int, scratch: Any) -> None:
    """`_slice_kernel.render` (see `slice_fallback.render` for the contract)."""
    global _warned
    if native is not None and active() == "native":
        native.render(src, bits, lut, h_axis, v_axis, out, targets, offset, frame_size, top,
                      left, scratch)
        return
    if native is None and not _warned:
        _warned = True  # once per process: a missing compiler is a fact, not news
        log.warning("frames: the native slice kernel is not built (%s); numpy + Pillow "
                    "render the same frames, slower (`pip install .` with a C compiler "
                    "builds it)", _missing)
    slice_fallback.render(src, bits, lut, h_axis, v_axis, out, targets, offset, frame_size,
                          top, left, scratch)
