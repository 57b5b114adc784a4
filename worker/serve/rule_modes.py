"""Switching a rule between shadow and live is an audited change.

Every time the rules in force are loaded (at start and on each reload) their modes are
compared with the last snapshot in the audit log ("rules.modes"); each rule whose mode
moved gets a "rules.mode_changed" event (rule, was, now, the file's sha256), and a new
snapshot is written. Comparing with the stored snapshot, not with the previous load in
memory, also catches an edit made while radraft was stopped, and several processes
loading the same file write it once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from radraft.core import audit
from radraft.core.db import AuditEvent
from radraft.dicom_node.rules import RuleSet

log = logging.getLogger(__name__)

SNAPSHOT = "rules.modes"
CHANGED = "rules.mode_changed"


def rule_modes(rules: RuleSet) -> dict[str, str]:
    return {r.name: r.mode for r in rules.rules if r.action == "draft"}


def record_modes(session: Session, rules: RuleSet) -> list[dict[str, Any]]:
    """Audit the mode changes since the last snapshot (adds to `session`; caller commits)."""
    last = session.scalars(select(AuditEvent).where(AuditEvent.kind == SNAPSHOT)
                           .order_by(AuditEvent.id.desc()).limit(1)).first()
    previous: dict[str, str] = dict((last.details or {}).get("modes", {})) if last else {}
    modes = rule_modes(rules)
    if last is not None and previous == modes:
        return []
    changes = [{"rule": name, "was": previous[name], "now": mode}
               for name, mode in sorted(modes.items())
               if name in previous and previous[name] != mode]
    for change in changes:
        audit.record(session, CHANGED, sha256=rules.digest, source=rules.source,
                     rule=change["rule"], was=change["was"], now=change["now"])
        log.warning("rule %s: mode %s -> %s", change["rule"], change["was"], change["now"])
    audit.record(session, SNAPSHOT, modes=modes, sha256=rules.digest)
    return changes


def mode_auditor(sessions: sessionmaker[Session]) -> Callable[[RuleSet], None]:
    """The RulesWatcher's `on_load` hook."""

    def on_load(rules: RuleSet) -> None:
        with sessions() as session:
            record_modes(session, rules)
            session.commit()

    return on_load
