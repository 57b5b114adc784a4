"""A stand-in model for tests that need a whole draft but not the model's text: it answers
at once with a valid urgent report (frames, prompt, outputs stay real)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from radraft.reporting.report_schema import DraftReport
from radraft.worker.links import Links

REPORT = {
    "exam": "CT", "technique": "stand-in", "comparison": "prior", "clinical_history": "test",
    "findings": [{"system": "lungs", "text": "stand-in finding", "severity": "minor",
                  "finding_type": "SCT:52988006", "finding_site": "SCT:39607008",
                  "frames": [1]}], "impression": [{"rank": 1, "text": "x"}],
    "recommendations": [], "triage": {"level": "urgent", "reasons": ["test"]},
    "limitations": "stand-in model",
}


@dataclass
class Prompt:
    system: str
    user: str
    sha256: str


@dataclass
class Result:
    report: DraftReport
    model_id: str = "stand-in"


class StandInBackend:
    def draft(self, seq: Any, prompt: Prompt) -> Result:
        return Result(DraftReport.model_validate(REPORT))


def _prompt(seq: Any, *, context: str, profile_prompt: str, remote: bool) -> Prompt:
    user = f"{seq.frame_count} frames; {context}"
    return Prompt("system", user, hashlib.sha256(user.encode()).hexdigest())


def stand_in_links() -> Links:
    return Links(build_prompt=_prompt, make_backend=lambda _s: StandInBackend())
