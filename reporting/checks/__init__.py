"""Checks of the model's answer before anything leaves (pure functions, no database)."""

from radraft.reporting.checks.consistency import (
    CheckPolicy,
    Consistency,
    Reason,
    check_report,
    is_empty_text,
    note_text,
    reask_text,
)
from radraft.reporting.checks.policy import policy_for

__all__ = ["CheckPolicy", "Consistency", "Reason", "check_report", "is_empty_text",
           "note_text", "policy_for", "reask_text"]
