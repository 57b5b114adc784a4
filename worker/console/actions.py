"""What the console changes, shared by the pages and the JSON API: retry or cancel a
delivery, acknowledge an ED alert; and the rules file: view, test, save, reload.
Every change is audited with the acting user's name."""

from __future__ import annotations

import hashlib
import os
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from radraft.core import audit
from radraft.core.db import Delivery, Draft, RuleDecision, db_now
from radraft.core.errors import ConfigError
from radraft.core.settings import Settings
from radraft.dicom_node.rules import (
    RuleSet,
    RulesWatcher,
    StudyFacts,
    facts_for_study,
    load_rules,
)
from radraft.dicom_node.rules.sandbox import Checked, SandboxError, check_text
from radraft.worker.console.auth import Principal
from radraft.worker.console.queries import decision_row
from radraft.worker.console.views import RulesView, RuleTestResult
from radraft.worker.enqueue import Enqueue, WakeUp

RETRYABLE = ("pending", "failed", "expired")
CANCELLABLE = ("pending", "failed", "expired")


class ActionError(Exception):
    """The action cannot be done (unknown row, wrong state, invalid rules): 400/404."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def retry_delivery(session: Session, settings: Settings, enqueue: Enqueue, delivery_id: int,
                   who: Principal) -> str:
    """Send a retrying, failed or expired row again now, with a fresh expiry window.
    At-least-once: a row a worker is sending at this very moment may go out twice, which
    the deterministic UIDs / control ids make harmless."""
    row = session.get(Delivery, delivery_id)
    if row is None:
        raise ActionError(f"delivery {delivery_id} does not exist", 404)
    if row.state not in RETRYABLE:
        raise ActionError(f"delivery {delivery_id} is {row.state}: nothing to retry")
    now = db_now(session)
    done = session.execute(update(Delivery).where(
        Delivery.id == delivery_id, Delivery.state.in_(RETRYABLE)).values(
        state="pending", next_attempt_at=now,
        expires_at=now + timedelta(hours=settings.delivery.max_age_hours),
    ).execution_options(synchronize_session=False))
    if getattr(done, "rowcount", 0) != 1:
        raise ActionError(f"delivery {delivery_id} changed meanwhile; reload")
    draft = session.get(Draft, row.draft_id)
    audit.record(session, "delivery.retried", study_uid=draft.study_uid if draft else "",
                 job_id=draft.job_id if draft else None, actor=who.username,
                 delivery=delivery_id, destination=row.destination, was=row.state)
    session.commit()
    attempts = session.scalar(select(Delivery.attempts).where(Delivery.id == delivery_id))
    enqueue(WakeUp("delivery", delivery_id, int(attempts or 0)))
    return "pending"


def cancel_delivery(session: Session, delivery_id: int, who: Principal) -> str:
    row = session.get(Delivery, delivery_id)
    if row is None:
        raise ActionError(f"delivery {delivery_id} does not exist", 404)
    if row.state not in CANCELLABLE:
        raise ActionError(f"delivery {delivery_id} is {row.state}: nothing to cancel")
    was = row.state
    row.state, row.next_attempt_at = "cancelled", None
    row.last_error = (row.last_error + "\n" if row.last_error else "") + \
        f"cancelled by {who.username}"
    audit.record(session, "delivery.cancelled", study_uid=row.draft.study_uid,
                 job_id=row.draft.job_id, actor=who.username, delivery=delivery_id,
                 destination=row.destination, was=was)
    session.commit()
    return "cancelled"


def acknowledge(session: Session, draft_id: int, who: Principal) -> Draft:
    draft = session.get(Draft, draft_id)
    if draft is None:
        raise ActionError(f"draft {draft_id} does not exist", 404)
    if draft.triage_level not in ("urgent", "critical"):
        raise ActionError(f"draft {draft_id} is {draft.triage_level}: no alert to acknowledge")
    if draft.acknowledged_at is not None:
        return draft  # twice is once (two people at the board)
    now = db_now(session)
    draft.acknowledged_at, draft.acknowledged_by = now, who.username
    audit.record(session, "alert.acknowledged", study_uid=draft.study_uid,
                 job_id=draft.job_id, actor=who.username, draft=draft_id,
                 triage=draft.triage_level,
                 after_minutes=round((now - draft.created_at).total_seconds() / 60, 1))
    session.commit()
    return draft


def _load(settings: Settings, path: Path) -> RuleSet:
    return load_rules(path, timezone=settings.site.timezone, profiles=settings.profiles.keys(),
                      destinations=settings.destinations.keys())


def _rule_rows(rules: RuleSet) -> list[dict[str, object]]:
    return [{"name": r.name, "line": r.line, "action": r.action, "profile": r.profile,
             "priority": r.priority.value if r.action == "draft" else "",
             "destinations": list(r.destinations), "continue": r.continue_,
             "default": r.default, "conditions": len(r.conditions), "mode": r.mode}
            for r in rules.rules]


def rules_view(settings: Settings, watcher: RulesWatcher) -> RulesView:
    current = watcher.current()
    path = settings.rules_file
    text, valid, errors, digest = "", False, "no rules file configured (rules_file)", ""
    if path is not None:
        try:
            raw = path.read_bytes()
            text, digest = raw.decode("utf-8", "replace"), hashlib.sha256(raw).hexdigest()
            _load(settings, path)
            valid, errors = True, ""
        except (OSError, ConfigError) as exc:
            errors = str(exc)
    return RulesView(path=str(path) if path else None, text=text, valid=valid, errors=errors,
                     in_force_digest=current.digest, file_digest=digest,
                     in_force_count=len(current.rules), watcher_error=watcher.last_error,
                     rules=_rule_rows(current))


def _check_text(settings: Settings, text: str, facts: StudyFacts | None = None) -> Checked:
    """Check an edited text (and decide `facts` with it) in a child process with time and
    memory limits: a console user's YAML and patterns never run in the serving process."""
    try:
        return check_text(text, timezone=settings.site.timezone,
                          profiles=settings.profiles.keys(),
                          destinations=settings.destinations.keys(), facts=facts)
    except SandboxError as exc:
        raise ActionError(str(exc)) from None


def try_rules(session: Session, settings: Settings, watcher: RulesWatcher, study_uid: str,
               text: str = "") -> RuleTestResult:
    """The decision the rules (the edited `text`, else those in force) give a received
    study now. Nothing is recorded."""
    try:
        facts = facts_for_study(session, study_uid.strip(), now=db_now(session))
    except LookupError as exc:
        raise ActionError(str(exc), 404) from None
    decided = (_check_text(settings, text, facts).outcomes if text.strip()
               else watcher.current().decide(facts))
    now = db_now(session)
    outcomes = [decision_row(RuleDecision(
        study_uid=study_uid, version="(test)", rule_name=o.rule_name, action=o.action,
        profile=o.profile, priority=o.priority.value if o.priority else "",
        destinations=list(o.destinations), reasons=list(o.reasons), decided_at=now,
    )) for o in decided]
    return RuleTestResult(study_uid=study_uid, outcomes=outcomes,
                          source="edited text" if text.strip() else "rules in force")


def save_rules(session: Session, settings: Settings, watcher: RulesWatcher, text: str,
               who: Principal) -> RulesView:
    """Validate, then replace the rules file atomically and reload; an invalid text is
    refused with every error and the file is left as it was."""
    path = settings.rules_file
    if path is None:
        raise ActionError("no rules file configured (rules_file): nothing to save to")
    checked = _check_text(settings, text)
    tmp = path.with_name(f".{path.name}.console-{os.getpid()}")
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:  # a read-only mount (a Kubernetes ConfigMap): say so
        tmp.unlink(missing_ok=True)
        raise ActionError(f"cannot write {path}: {exc.strerror}") from None
    watcher.poll()
    audit.record(session, "rules.changed", actor=who.username, path=str(path),
                 sha256=hashlib.sha256(text.encode()).hexdigest(), rules=checked.rules)
    session.commit()
    return rules_view(settings, watcher)


def reload_rules(session: Session, settings: Settings, watcher: RulesWatcher,
                 who: Principal) -> RulesView:
    """Re-read the file now (the watcher also polls it); an invalid file keeps the rules
    in force and says why."""
    reloaded = watcher.poll()
    view = rules_view(settings, watcher)
    audit.record(session, "rules.reloaded", actor=who.username, changed=reloaded,
                 sha256=view.in_force_digest, valid=view.valid)
    session.commit()
    return view
