"""Frames as the OpenAI-style video part vLLM reads: base64 JPEG frames joined by commas."""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO

import numpy as np
import numpy.typing as npt
from PIL import Image

JPEG_QUALITY = 90


def _jpeg(frame: npt.NDArray[np.uint8]) -> bytes:
    buffer = BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def jpeg_frames(frames: npt.NDArray[np.uint8]) -> list[bytes]:
    # PIL releases the GIL while encoding: two threads use both cores.
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(_jpeg, frames))


def video_data_url(frames: npt.NDArray[np.uint8]) -> str:
    """`data:video/jpeg;base64,<frame1>,<frame2>,...` (vLLM's frame-list video URL)."""
    parts = [base64.b64encode(j).decode("ascii") for j in jpeg_frames(frames)]
    return "data:video/jpeg;base64," + ",".join(parts)


def decode_video_data_url(url: str) -> npt.NDArray[np.uint8]:
    """The inverse, for `radraft model serve`: T×H×W×3 uint8."""
    prefix = "data:video/jpeg;base64,"
    if not url.startswith(prefix):
        raise ValueError("video_url must be data:video/jpeg;base64,<frame>,<frame>,...")
    frames = []
    for part in url[len(prefix):].split(","):
        with Image.open(BytesIO(base64.b64decode(part, validate=True))) as image:
            frames.append(np.asarray(image.convert("RGB")))
    if not frames:
        raise ValueError("video_url holds no frame")
    if len({f.shape for f in frames}) != 1:
        raise ValueError("video frames differ in size")
    return np.stack(frames)
