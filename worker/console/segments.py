"""A frame sequence rebuilt from a Draft row's stored segment table, without pixels:
enough for `render_html` to describe each cited frame ("frame 5 (CT arterial, ...)")."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from radraft.reporting.sequence import FrameSequence, Segment

_FIELDS = {f.name for f in dataclasses.fields(Segment)}


def sequence_stub(segments: list[dict[str, Any]]) -> FrameSequence:
    rebuilt = []
    for raw in segments:
        try:
            rebuilt.append(Segment(**{k: v for k, v in raw.items() if k in _FIELDS}))
        except TypeError:
            continue  # a row written by an older schema: that frame is described by number
    return FrameSequence(frames=np.zeros((0, 1, 1, 3), dtype=np.uint8), segments=rebuilt,
                         refs=[])
