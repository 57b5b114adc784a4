"""The slice kernel without a C compiler: numpy's table lookup and Pillow's own BOX resize.

Same call, same checks, same error messages and the same bytes as `_slice_kernel.render`
(tests/unit/test_frames_box.py runs on both); slower: each lane is a separate Pillow image
and numpy passes, and the GIL is held between them. Used when the extension was not built
(`pip install` without a compiler) or when `RADRAFT_SLICE_KERNEL=python` asks for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from radraft.reporting.frames.box import axis_table

_HEADER = 4  # n_in, n_out, kmax, two_tap


@dataclass(frozen=True, slots=True)
class _Axis:
    n_in: int
    n_out: int


def _axis(table: Any, name: str) -> _Axis:
    view = memoryview(table)
    if view.format not in ("i", "l", "=i", "<i") or view.itemsize != 4:
        raise ValueError(f"{name}: not an int32 axis table")
    words = np.frombuffer(view.cast("B"), dtype=np.int32)
    if len(words) < _HEADER:
        raise ValueError(f"{name}: malformed axis table")
    n_in, n_out, kmax = (int(w) for w in words[:3])
    if n_in < 1 or n_out < 1 or kmax < 1 or len(words) != _HEADER + n_out * (4 + kmax):
        raise ValueError(f"{name}: malformed axis table")
    # The resize below is Pillow's BOX: only the tables box.py builds describe it.
    if not np.array_equal(words, axis_table(n_in, n_out)):
        raise ValueError(f"{name}: not the BOX table of {n_in} -> {n_out} pixels")
    return _Axis(n_in, n_out)


def _bytes(buffer: Any, *, writable: bool = False) -> npt.NDArray[np.uint8]:
    flat = np.frombuffer(memoryview(buffer).cast("B"), dtype=np.uint8)
    if writable and not flat.flags.writeable:
        raise ValueError("out: not a writable buffer")
    return flat


def _words(src: Any, bits: int, lut: Any, pixels: int) -> npt.NDArray[np.uint32]:
    raw = _bytes(src)
    if bits not in (8, 16, 32):
        raise ValueError(f"bits must be 8, 16 or 32, not {bits}")
    if len(raw) < pixels * (bits // 8):
        raise ValueError(f"source holds {len(raw)} bytes, {pixels * (bits // 8)} needed")
    if bits == 32:
        if lut is not None:
            raise ValueError("lane words take no lookup table")
        return raw[: pixels * 4].view(np.uint32)
    if lut is None:
        raise ValueError(f"{bits}-bit stored values need a lookup table")
    table = _bytes(lut)
    if len(table) < 4 << bits:
        raise ValueError(f"lookup table holds {len(table)} bytes, {4 << bits} needed")
    stored = raw[: pixels * (bits // 8)].view(np.uint16 if bits == 16 else np.uint8)
    looked_up: npt.NDArray[np.uint32] = table[: 4 << bits].view(np.uint32)[stored]
    return looked_up


def render(src: Any, bits: int, lut: Any, h_axis: Any, v_axis: Any, out: Any, targets: Any,
           offset: int, frame_size: int, top: int, left: int, scratch: Any) -> None:
    """Window one slice through `lut` (up to four grey lanes per 32-bit word), resize every
    lane with Pillow's BOX filter and write lanes into the R, G, B bytes of the frames
    `targets` names ([frame, lane R, lane G, lane B] rows, frame + `offset`)."""
    h, v = _axis(h_axis, "horizontal"), _axis(v_axis, "vertical")
    rows, cols, height, width = v.n_in, h.n_in, v.n_out, h.n_out
    words = _words(src, bits, lut, rows * cols).reshape(rows, cols)
    if frame_size < 1 or top < 0 or left < 0 or top + height > frame_size \
            or left + width > frame_size:
        raise ValueError("the resized slice does not fit in the frame")
    frame_bytes = frame_size * frame_size * 3
    flat_out = _bytes(out, writable=True)
    frames = len(flat_out) // frame_bytes
    target_words = _bytes(targets)
    if len(target_words) % 16:
        raise ValueError("targets: int32 rows of [frame, lane R, G, B]")
    rows_of_targets = target_words.view(np.int32).reshape(-1, 4)
    for frame, *lanes in rows_of_targets.tolist():
        if not 0 <= frame + offset < frames:
            raise ValueError(f"target frame {frame + offset} outside {frames} frames")
        for lane in lanes:
            if not 0 <= lane <= 3:
                raise ValueError(f"target lane {lane} is not 0-3")
    need = (cols + (rows + 1) * width) * 4
    if len(_bytes(scratch)) < need:
        raise ValueError(f"scratch holds {len(_bytes(scratch))} bytes, {need} needed")
    resized: dict[int, npt.NDArray[np.uint8]] = {}
    for lane in sorted({int(x) for x in rows_of_targets[:, 1:].ravel()}):
        grey = ((words >> np.uint32(8 * lane)) & np.uint32(0xFF)).astype(np.uint8)
        # Horizontal pass, then vertical, each rounded to 8 bits: the kernel's order. (Pillow
        # 13's own two-axis resize takes the vertical pass first when its intermediate image
        # is smaller, which differs by one level in some pixels.)
        image = Image.fromarray(grey, mode="L").resize((width, rows), Image.Resampling.BOX)
        resized[lane] = np.asarray(image.resize((width, height), Image.Resampling.BOX))
    frames_view = flat_out[: frames * frame_bytes].reshape(frames, frame_size, frame_size, 3)
    for frame, *lanes in rows_of_targets.tolist():
        region = frames_view[frame + offset, top:top + height, left:left + width]
        for channel, lane in enumerate(lanes):
            region[..., channel] = resized[lane]
