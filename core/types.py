"""Small types that cross package borders (DESIGN.md "Shared vocabulary")."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

# (Study Instance UID, study version, profile): one Job, and every output UID and HL7
# message control id derives from it (core.uids).
JobKey = tuple[str, str, str]


class Priority(enum.StrEnum):
    """How soon a job must be drafted. Mapped once to AMQP priorities and HL7 TQ1-9."""

    STAT = "stat"
    URGENT = "urgent"
    ROUTINE = "routine"

    @property
    def amqp(self) -> int:
        """AMQP message priority (queues declare x-max-priority 9)."""
        return {Priority.STAT: 9, Priority.URGENT: 6, Priority.ROUTINE: 1}[self]

    @property
    def hl7(self) -> str:
        """HL7 v2 TQ1-9 / OBR-27 priority code (table 0485: S stat, A ASAP, R routine)."""
        return {Priority.STAT: "S", Priority.URGENT: "A", Priority.ROUTINE: "R"}[self]

    @classmethod
    def from_hl7(cls, code: str | None) -> Priority:
        """Read an HL7 priority code; unknown or empty codes are routine."""
        value = (code or "").strip().upper()[:1]
        return {"S": cls.STAT, "A": cls.URGENT, "P": cls.URGENT}.get(value, cls.ROUTINE)


class TriageLevel(enum.StrEnum):
    """How urgently a human must look at a draft."""

    CRITICAL = "critical"
    URGENT = "urgent"
    ROUTINE = "routine"

    @property
    def alerts_ed(self) -> bool:
        return self is not TriageLevel.ROUTINE


@dataclass(frozen=True, slots=True)
class StudyStable:
    """The node's announcement that a study received no new image for `stable_seconds`.

    `version` is the digest of the sorted SOP Instance UIDs of the study's IMAGE instances.
    """

    study_uid: str
    version: str
    instance_count: int
    image_count: int
    calling_aet: str
    first_received: datetime
    last_received: datetime
