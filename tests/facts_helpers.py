"""A scripted model for tests of what radraft states around the model's answer."""

from __future__ import annotations

from radraft.reporting.frames import TokenBudget
from radraft.reporting.model import DraftResult
from radraft.reporting.prompts import Prompt
from radraft.reporting.report_schema import DraftReport
from radraft.reporting.sequence import FrameSequence

MODEL_EXAM = "MODEL-EXAM-TEXT"
MODEL_TECHNIQUE = "MODEL-TECHNIQUE-TEXT"
FINDING = "Läsion im Segment VII – Ø 12 mm, 肝"


class Scripted:
    """A `ModelBackend` that cites the first and the last frame; ranks out of order;
    exam/technique that must not be stated anywhere."""

    def __init__(self, level: str = "routine") -> None:
        self.level = level

    def token_budget(self) -> TokenBudget:
        return lambda _h, _w, wanted: wanted

    def draft(self, seq: FrameSequence, prompt: Prompt) -> DraftResult:
        last = seq.frame_count - 1
        return DraftResult(report=self._report(last), model_id="scripted-model",
                           model_version="rev 0123abcd", attempts=1)

    def _report(self, last: int) -> DraftReport:
        return (DraftReport.model_validate({
            "exam": MODEL_EXAM, "technique": MODEL_TECHNIQUE, "comparison": "",
            "clinical_history": "", "limitations": "Scripted model.",
            "findings": [{"system": "liver", "text": FINDING, "severity": "minor",
                          "finding_type": "SCT:52988006", "finding_site": "SCT:10200004",
                          "frames": [0, last]}],
            "impression": [{"rank": 10, "text": "Zweite Zeile"},
                           {"rank": 6, "text": "Erste Zeile"}],
            "recommendations": [], "triage": {"level": self.level,
                       "reasons": ["scripted"] if self.level != "routine" else []},
        }))


def scripted(level: str = "routine") -> Scripted:
    return Scripted(level)
