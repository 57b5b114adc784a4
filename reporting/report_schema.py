"""`DraftReport`: what the model must answer, as a pydantic model and a JSON schema.

Every string has a maxLength and every list a maxItems, so a constrained decoder always
terminates; :func:`request_schema` bounds cited frame indices to the sequence at hand.
"""

from __future__ import annotations

import copy
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from radraft.core.types import TriageLevel
from radraft.reporting.codes import FINDING_SITES, FINDING_TYPES

FindingType = StrEnum("FindingType", {c.key: c.key for c in FINDING_TYPES})  # type: ignore[misc]
FindingSite = StrEnum("FindingSite", {c.key: c.key for c in FINDING_SITES})  # type: ignore[misc]

MAX_FRAMES_CITED = 8


class Severity(StrEnum):
    NORMAL = "normal"
    MINOR = "minor"
    SIGNIFICANT = "significant"
    CRITICAL = "critical"


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Finding(_Closed):
    system: str = Field(min_length=1, max_length=64, description="organ or system, e.g. 'liver'")
    text: str = Field(min_length=1, max_length=600)
    severity: Severity
    finding_type: FindingType  # type: ignore[valid-type]
    finding_site: FindingSite  # type: ignore[valid-type]
    frames: list[int] = Field(default_factory=list, max_length=MAX_FRAMES_CITED)


class ImpressionItem(_Closed):
    rank: int = Field(ge=1, le=10)
    text: str = Field(min_length=1, max_length=400)


class Triage(_Closed):
    level: TriageLevel
    reasons: list[str] = Field(default_factory=list, max_length=5)
    critical_findings: list[str] = Field(default_factory=list, max_length=5)

    @field_validator("reasons", "critical_findings")
    @classmethod
    def _no_empty(cls, value: list[str]) -> list[str]:
        if any(not item.strip() for item in value):
            raise ValueError("items must not be empty")
        return value


class DraftReport(_Closed):
    exam: str = Field(min_length=1, max_length=200)
    technique: str = Field(max_length=600)
    comparison: str = Field(max_length=400)
    clinical_history: str = Field(max_length=600)
    findings: list[Finding] = Field(default_factory=list, max_length=12)
    impression: list[ImpressionItem] = Field(default_factory=list, max_length=6)
    recommendations: list[str] = Field(default_factory=list, max_length=5)
    triage: Triage
    limitations: str = Field(max_length=400)

    @field_validator("recommendations")
    @classmethod
    def _no_empty(cls, value: list[str]) -> list[str]:
        if any(not item.strip() for item in value):
            raise ValueError("items must not be empty")
        return value

    def cited_frames(self) -> list[int]:
        return sorted({f for finding in self.findings for f in finding.frames})


def _bound_string_items(schema: dict[str, Any], max_len: int) -> None:
    """pydantic omits maxLength on list[str] items; add it so decoding terminates (and
    minLength 1: an empty recommendation or reason says nothing)."""
    for node in _walk(schema):
        items = node.get("items")
        if (
            node.get("type") == "array" and isinstance(items, dict)
            and items.get("type") == "string" and "maxLength" not in items
        ):
            items["maxLength"] = max_len
            items["minLength"] = 1


def _require_all(schema: dict[str, Any]) -> None:
    """Every property required (OpenAI's strict json_schema mode demands it, and a
    constrained decoder then never has to choose which keys to write)."""
    for node in _walk(schema):
        if node.get("type") == "object" and isinstance(node.get("properties"), dict):
            node["required"] = list(node["properties"])
            node["additionalProperties"] = False


def _walk(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found.extend(_walk(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_walk(value))
    return found


def base_schema() -> dict[str, Any]:
    schema = DraftReport.model_json_schema()
    _bound_string_items(schema, 300)
    _require_all(schema)
    return schema


def request_schema(frame_count: int) -> dict[str, Any]:
    """The schema for one request: cited frames must lie in [0, frame_count - 1]."""
    if frame_count < 1:
        raise ValueError("a request needs at least one frame")
    schema = copy.deepcopy(base_schema())
    frames = schema["$defs"]["Finding"]["properties"]["frames"]
    frames["items"] = {"type": "integer", "minimum": 0, "maximum": frame_count - 1}
    return schema
