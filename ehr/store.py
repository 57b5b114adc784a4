"""One batch of messages in one transaction: raw rows, duplicates, application, answers.

The raw rows and the lab results of a batch are written with one multi-row INSERT each (ORM
bulk inserts: the unit of work's per-object bookkeeping is most of a message's CPU time).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from radraft.core.db import Hl7Message, LabResult, db_now
from radraft.core.errors import Hl7Error
from radraft.ehr.apply import LAB_BUFFER, PATIENT_CACHE, OrderChange, apply_message
from radraft.ehr.intake import Intake, error_from_text, error_text
from radraft.ehr.mllp import build_ack

Key = tuple[str, str, str]


@dataclass
class Outcome:
    ack: bytes
    changes: list[OrderChange] = field(default_factory=list)


class NeedsCare(Exception):
    """A message of the batch cannot be applied: redo the batch with one savepoint each."""


def _text(value: str) -> str:
    return value.replace("\x00", "")  # PostgreSQL refuses NUL in text: never in a raw row


def _raw_row(item: Intake, raw: bytes, peer: str, now: datetime) -> dict[str, Any]:
    assert item.msg is not None
    msg = item.msg
    return {  # optimistically AA: the row and its application commit together or not at all
        "control_id": _text(item.control_id),
        "sending_application": _text(msg.get("MSH", 3))[:128],
        "sending_facility": _text(item.facility), "message_type": _text(msg.message_type)[:16],
        "version": _text(msg.get("MSH", 12))[:16], "raw": raw, "sha256": item.sha256,
        "peer": peer[:64], "received_at": now, "ack_code": item.code or "AA",
        "error": error_text(item.error) if item.error else "",
        "applied_at": None if item.code else now}


def store_batch(
    session: Session, items: Sequence[tuple[Intake, bytes, str]], *, careful: bool = True,
) -> list[Outcome]:
    """Store and apply `items` (intake, raw, peer) in the session's transaction (caller commits).

    careful=False applies without savepoints (two round trips less per message) and raises
    NeedsCare at the first message that cannot be applied; the caller then rolls back and
    calls again with careful=True.
    """
    now = db_now(session)
    digests = {item.sha256 for item, _, _ in items}
    known: dict[Key, tuple[str, str]] = {
        (row.control_id, row.sending_facility, row.sha256): (row.ack_code, row.error)
        for row in session.execute(select(
            Hl7Message.control_id, Hl7Message.sending_facility, Hl7Message.sha256,
            Hl7Message.ack_code, Hl7Message.error).where(Hl7Message.sha256.in_(digests)))}
    new: dict[Key, dict[str, Any]] = {}
    for item, raw, peer in items:
        if item.key not in known and item.key not in new and item.msg is not None:
            new[item.key] = _raw_row(item, raw, peer, now)
    ids: dict[Key, int] = {}
    if new:  # raw rows first: the savepoints below never undo them
        returned = session.scalars(insert(Hl7Message).returning(
            Hl7Message.id, sort_by_parameter_order=True), list(new.values())).all()
        ids = dict(zip(new, returned, strict=True))
    if not careful:
        session.info[LAB_BUFFER] = []
    outcomes: list[Outcome] = []
    done: dict[Key, bytes] = {}
    for item, _, _ in items:
        assert item.msg is not None
        if item.key in done:  # the same message twice in this batch: the first one's answer
            outcomes.append(Outcome(done[item.key]))
            continue
        if item.key in known:  # a duplicate: its first answer, not applied again
            code, text = known[item.key]
            outcome = Outcome(build_ack(item.msg, code or "AA",
                                        error_from_text(text, reject=code == "AR")))
        elif item.code:  # refused or wrong before applying: stored with its answer
            outcome = Outcome(build_ack(item.msg, item.code, item.error))
        else:
            outcome = _apply(session, item, ids[item.key], now, careful)
        done[item.key] = outcome.ack
        outcomes.append(outcome)
    labs = session.info.pop(LAB_BUFFER, None)
    if labs:  # a value refused here sends the caller to careful mode (DataError)
        session.execute(insert(LabResult), labs)
    return outcomes


def _apply(session: Session, item: Intake, row_id: int, now: datetime,
           careful: bool) -> Outcome:
    assert item.msg is not None
    try:
        if careful:
            with session.begin_nested():
                changes = apply_message(session, item.msg, row_id, now)
                session.flush()  # a value the database refuses fails here, inside the savepoint
        else:
            changes = apply_message(session, item.msg, row_id, now)
    except Hl7Error as exc:
        problem = exc
    except (DataError, IntegrityError) as exc:  # a value the database refuses
        problem = Hl7Error(f"cannot apply: {type(exc.orig).__name__}: "
                           f"{str(exc.orig).splitlines()[0][:120]}", code="207")
    else:
        return Outcome(build_ack(item.msg, "AA"), changes)
    if not careful:
        raise NeedsCare from problem
    session.info.pop(PATIENT_CACHE, None)  # it may hold rows the savepoint took back
    session.execute(update(Hl7Message).where(Hl7Message.id == row_id).values(
        ack_code="AE", applied_at=None, error=error_text(problem)))
    return Outcome(build_ack(item.msg, "AE", problem))
