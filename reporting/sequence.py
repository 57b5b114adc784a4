"""The frame sequence: a whole study (and its priors) as one grounded video.

These types are the contract between frame assembly (`reporting.frames`), the model
backends, the SR/KOS builders and the worker. Pure data, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

Combine = Literal["single", "sample", "average", "mip", "pad"]


@dataclass(frozen=True, slots=True)
class FrameRef:
    """Where one frame came from: the cited instance (the central slice of a slab)."""

    study_uid: str
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    # 1-based frame number inside a multi-frame object; None for single-frame objects.
    frame_number: int | None
    is_prior: bool
    # Every source slice (sop_uid, frame_number) combined into this frame, in order.
    sources: tuple[tuple[str, int | None], ...] = ()


@dataclass(frozen=True, slots=True)
class Segment:
    """A run of consecutive frames from one stack of one series under one intensity mapping."""

    index: int
    frame_start: int  # inclusive
    frame_stop: int  # exclusive
    study_uid: str
    series_uid: str
    study_date: str  # YYYYMMDD as in the DICOM header
    modality: str
    series_description: str
    label: str  # "portal venous", "T2 FLAIR", ...
    plane: str  # axial | coronal | sagittal | oblique
    mapping: str  # window name ("abdomen", "lung+mediastinum+bone") or "percentile 1-99"
    combine: Combine
    slices_in_stack: int
    is_prior: bool
    body_part: str = ""
    padded_frames: int = 0
    # Where the label came from: "description", "parameters", "header", "image", ...
    label_source: str = ""
    series_number: int | None = None
    # What the label rests on ("aorta 320 HU at 5 levels (z -80 to -20 mm)"), or "".
    label_evidence: str = ""
    # Further facts a reader needs to map the segment back ("part 2 of 2, 504 mm gap
    # before it", "derived: MPR", "position not given: frame order", "SUV 0-10").
    notes: tuple[str, ...] = ()

    @property
    def frame_count(self) -> int:
        return self.frame_stop - self.frame_start


@dataclass(frozen=True, slots=True)
class ExcludedSeries:
    """A series or instance group that did not enter the frames, and why."""

    study_uid: str
    series_uid: str
    series_description: str
    modality: str
    reason: str  # "localizer", "secondary capture", "burned-in annotation", "non-image (SR)"
    instance_count: int


@dataclass(slots=True)
class FrameSequence:
    """Frames (T×H×W×3 uint8), the segment table and the frame → instance map."""

    frames: npt.NDArray[np.uint8]
    segments: list[Segment]
    refs: list[FrameRef]
    excluded: list[ExcludedSeries] = field(default_factory=list)
    # Study-level metadata for prompts and outputs (no names: patient id/age/sex only).
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.frames.ndim != 4 or self.frames.shape[3] != 3 or self.frames.dtype != np.uint8:
            raise ValueError(f"frames must be T×H×W×3 uint8, got {self.frames.shape}")
        if len(self.refs) != self.frames.shape[0]:
            raise ValueError("one FrameRef per frame is required")

    @property
    def frame_count(self) -> int:
        return int(self.frames.shape[0])

    def segment_of(self, frame: int) -> Segment:
        for seg in self.segments:
            if seg.frame_start <= frame < seg.frame_stop:
                return seg
        raise IndexError(f"frame {frame} is outside the sequence of {self.frame_count}")
