"""A scripted model for tests of what radraft states around the model's answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from radraft.reporting.prompts import build_prompt
from radraft.reporting.report_schema import DraftReport
from radraft.reporting.sequence import FrameSequence
from radraft.worker.links import Links

MODEL_EXAM = "MODEL-EXAM-TEXT"
MODEL_TECHNIQUE = "MODEL-TECHNIQUE-TEXT"
FINDING = "Läsion im Segment VII – Ø 12 mm, 肝"


@dataclass
class _Result:
    report: DraftReport
    model_id: str = "scripted-model"
    model_version: str = "rev 0123abcd"


class _Scripted:
    """Cites the first and the last frame; ranks out of order; exam/technique that must
    not be stated anywhere."""

    def __init__(self, level: str = "routine") -> None:
        self.level = level

    def draft(self, seq: FrameSequence, prompt: Any) -> _Result:
        last = seq.frame_count - 1
        return _Result(DraftReport.model_validate({
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


LINKS = Links(build_prompt=build_prompt, make_backend=lambda _s: _Scripted())


def scripted_links(level: str) -> Links:
    return Links(build_prompt=build_prompt, make_backend=lambda _s: _Scripted(level))
