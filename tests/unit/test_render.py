"""The human-readable draft: plain text and HTML."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import numpy as np

from radraft.reporting.render import AI_NOTICE, render_html, render_text
from radraft.reporting.report_schema import DraftReport
from radraft.reporting.sequence import FrameRef, FrameSequence, Segment


def _seq() -> FrameSequence:
    refs = [FrameRef("1.1", "1.1.1", f"1.1.1.{i}", "1.2.840.10008.5.1.4.1.1.2", None, i >= 4)
            for i in range(6)]
    segments = [
        Segment(0, 0, 4, "1.1", "1.1.1", "20261120", "CT", "ABD", "arterial", "axial",
                "abdomen", "average", 40, False),
        Segment(1, 4, 6, "1.0", "1.0.1", "20251120", "CT", "ABD", "portal venous", "axial",
                "abdomen", "average", 40, True),
    ]
    return FrameSequence(np.zeros((6, 2, 2, 3), np.uint8), segments, refs)


def _draft(**changes: Any) -> DraftReport:
    data: dict[str, Any] = dict(
        exam="CT abdomen", technique="Arterial phase", comparison="CT 2025",
        clinical_history="Pain <acute> & fever",
        findings=[{"system": "liver", "text": "Lesion <script>alert(1)</script>",
                   "severity": "critical", "finding_type": "SCT:52988006",
                   "finding_site": "SCT:10200004", "frames": [2, 5]}],
        impression=[{"rank": 2, "text": "Second"}, {"rank": 1, "text": "First"}],
        recommendations=["MRI"], limitations="Motion",
        triage={"level": "critical", "reasons": ["bleed"], "critical_findings": ["Bleeding"]},
    )
    data.update(changes)
    return DraftReport.model_validate(data)


def test_text_has_notice_sections_and_frame_origins() -> None:
    text = render_text(_draft(), _seq())
    lines = text.splitlines()
    assert lines[0] == f"*** {AI_NOTICE} ***"
    assert lines[1] == "Triage: CRITICAL — bleed"
    assert "Critical: Bleeding" in lines
    assert "- liver: Lesion <script>alert(1)</script> [critical]" in lines
    assert ("  images: frame 2 (CT arterial, 2026-11-20); "
            "frame 5 (CT portal venous, 2025-11-20, prior)") in lines
    assert lines.index("1. First") < lines.index("2. Second")
    for heading in ("CLINICAL HISTORY", "COMPARISON", "FINDINGS",
                    "LIMITATIONS", "IMPRESSION", "RECOMMENDATIONS"):
        assert heading in lines
    # The model's exam/technique are never stated (the procedure is the order's/header's).
    assert "EXAM" not in lines and "TECHNIQUE" not in lines and "CT abdomen" not in text


def test_text_without_findings_or_optional_parts() -> None:
    text = render_text(_draft(findings=[], comparison="", limitations="", recommendations=[]),
                       _seq())
    assert "No findings reported by the model." in text
    assert "COMPARISON" not in text and "LIMITATIONS" not in text
    assert "RECOMMENDATIONS" not in text


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.links: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.links += [v or "" for k, v in attrs if k == "href"]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_escapes_text_and_links_frames() -> None:
    page = render_html(_draft(), _seq(), frame_urls=lambda i: f"/frames/{i}.png?a=1&b=2")
    parsed = _Collector()
    parsed.feed(page)
    assert "script" not in parsed.tags
    assert parsed.links == ["/frames/2.png?a=1&b=2", "/frames/5.png?a=1&b=2"]
    text = "".join(parsed.text)
    assert "Lesion <script>alert(1)</script> [critical]" in text
    assert "Pain <acute> & fever" in text
    assert AI_NOTICE in text
    assert 'class="radraft-draft triage-critical"' in page


def test_html_without_urls_has_no_links() -> None:
    parsed = _Collector()
    parsed.feed(render_html(_draft(), _seq()))
    assert parsed.links == []
    assert "frame 5 (CT portal venous, 2025-11-20, prior)" in "".join(parsed.text)
