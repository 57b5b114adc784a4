"""A stand-in model backend: a fixed, schema-valid report, no weights, no server.

For tests and benchmarks only (the draft task, the console, `bench.pipeline`): it answers the
same `ModelBackend` contract as the real backends, so everything around the model runs for
real. `before` runs inside `draft` first (a test blocks there to look at the database while
the "model" is busy, or changes the world meanwhile); `delay_s` makes a slow model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from radraft.core.errors import ModelError
from radraft.reporting.frames import TokenBudget
from radraft.reporting.model._base import DraftResult
from radraft.reporting.prompts import Prompt
from radraft.reporting.report_schema import DraftReport
from radraft.reporting.sequence import FrameSequence

STAND_IN_REPORT: dict[str, Any] = {
    "exam": "CT abdomen", "technique": "portal venous", "comparison": "none",
    "clinical_history": "test",
    # Consistent with its urgent triage (a significant finding in the liver, citing a frame
    # of the study), so the answer check (reporting.checks) lets its ED alert go.
    "findings": [{"system": "liver", "text": "stand-in finding", "severity": "significant",
                  "finding_type": "SCT:52988006", "finding_site": "SCT:10200004",
                  "frames": [1]}],
    "impression": [{"rank": 1, "text": "stand-in impression"}],
    "recommendations": [], "triage": {"level": "urgent", "reasons": ["stand-in"]},
    "limitations": "stand-in model",
}


def _all_frames(_height: int, _width: int, wanted: int) -> int:
    return wanted


class StandInBackend:
    """Answers `report` (default `STAND_IN_REPORT`) to every prompt."""

    name = "stand-in"

    def __init__(
        self, report: Mapping[str, Any] | None = None, *, model_id: str = "stand-in",
        delay_s: float = 0.0,
        before: Callable[[FrameSequence, Prompt], None] | None = None,
    ) -> None:
        self.report = DraftReport.model_validate(dict(report or STAND_IN_REPORT))
        self.model_id = model_id
        self.delay_s = delay_s
        self.before = before
        self.calls = 0

    def draft(self, seq: FrameSequence, prompt: Prompt) -> DraftResult:
        if prompt.frame_count != seq.frame_count:
            raise ModelError(f"prompt built for {prompt.frame_count} frames, "
                             f"sequence has {seq.frame_count}")
        self.calls += 1
        if self.before is not None:
            self.before(seq, prompt)
        if self.delay_s:
            time.sleep(self.delay_s)
        return DraftResult(report=self.report, model_id=self.model_id, model_version="",
                           attempts=1)

    def token_budget(self) -> TokenBudget:
        return _all_frames
