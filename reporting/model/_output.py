"""The answer checks: JSON that validates against DraftReport and cites real frames only."""

from __future__ import annotations

import json

from pydantic import ValidationError

from radraft.core.errors import ModelError
from radraft.reporting.report_schema import DraftReport


class MalformedAnswerError(ModelError):
    """The model answered something that is not a valid, grounded DraftReport (retried)."""


def _strip_fence(text: str) -> str:
    text = text.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    return text.strip()


def parse_draft(text: str, frame_count: int) -> DraftReport:
    """The DraftReport in `text`, or MalformedAnswerError saying exactly what is wrong."""
    body = _strip_fence(text)
    if not body:
        raise MalformedAnswerError("the model answered nothing")
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise MalformedAnswerError(f"not JSON at character {exc.pos}: {exc.msg}") from exc
    try:
        report = DraftReport.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise MalformedAnswerError(
            f"does not match the report schema: {where}: {first['msg']} "
            f"({exc.error_count()} error(s))") from exc
    bad = [f for f in report.cited_frames() if not 0 <= f < frame_count]
    if bad:
        raise MalformedAnswerError(
            f"cites frame(s) {bad} outside the sequence of {frame_count} frames")
    return report
