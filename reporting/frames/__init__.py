"""Frame assembly: a study (and its priors) as one grounded sequence of RGB frames.

Public API: `build_frame_sequence`, `segment_table_json`, `segment_table_text`,
`qwen_token_budget`; pictures live in `radraft.reporting.pictures`.
"""

from __future__ import annotations

from radraft.reporting.frames.assemble import build_frame_sequence
from radraft.reporting.frames.budget import TokenBudget, qwen_token_budget, qwen_video_tokens
from radraft.reporting.frames.render import RESAMPLE_NAME
from radraft.reporting.frames.table import segment_line, segment_table_json, segment_table_text
from radraft.reporting.frames.windows import CT_WINDOWS

__all__ = [
    "CT_WINDOWS",
    "RESAMPLE_NAME",
    "TokenBudget",
    "build_frame_sequence",
    "qwen_token_budget",
    "qwen_video_tokens",
    "segment_line",
    "segment_table_json",
    "segment_table_text",
]
