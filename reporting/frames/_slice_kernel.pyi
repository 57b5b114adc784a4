"""Types of the native slice kernel (_slice_kernel.c)."""

from typing import Any

import numpy.typing as npt

def render(src: npt.NDArray[Any], bits: int, lut: npt.NDArray[Any] | None,
           h_axis: npt.NDArray[Any], v_axis: npt.NDArray[Any], out: npt.NDArray[Any],
           targets: npt.NDArray[Any], offset: int, frame_size: int, top: int, left: int,
           scratch: npt.NDArray[Any]) -> None: ...
