"""The frame recipe: how a profile turns a study into frames (see reporting.frames).

A plain dataclass, not a pydantic model, so that frame assembly runs without importing
pydantic and pydantic-settings (0.15-0.25 s of a fresh process's start here). Settings
still validate it as a field of `ProfileSettings`: pydantic checks the field types of a
dataclass (and, with `__pydantic_config__`, refuses unknown keys); the ranges are checked
here, in `__post_init__`, for direct construction and for settings alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

Combine = Literal["sample", "average", "mip"]
_COMBINE = ("sample", "average", "mip")


@dataclass
class FrameRecipe:
    """How a profile turns a study into frames (see reporting.frames)."""

    __pydantic_config__: ClassVar[dict[str, Any]] = {"extra": "forbid"}

    windows: list[str] = field(default_factory=lambda: ["abdomen"])
    pack_windows: bool = False
    frame_size: int = 448  # 28..2048
    max_frames: int = 256  # >= 2
    prior_share: float = 0.25  # 0..0.9
    series_include: list[str] = field(default_factory=list)
    combine: Combine = "average"

    def __post_init__(self) -> None:
        problems = []
        if not 28 <= self.frame_size <= 2048:
            problems.append(f"frame_size must be between 28 and 2048, not {self.frame_size}")
        if self.max_frames < 2:
            problems.append(f"max_frames must be at least 2, not {self.max_frames}")
        if not 0 <= self.prior_share <= 0.9:
            problems.append(f"prior_share must be between 0 and 0.9, not {self.prior_share}")
        if self.combine not in _COMBINE:
            problems.append(f"combine must be one of {', '.join(_COMBINE)}, "
                            f"not {self.combine!r}")
        if problems:
            raise ValueError("; ".join(problems))
