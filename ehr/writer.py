"""Group commit: one writer thread stores and applies every waiting message in ONE transaction.

Connections hand their messages to `GroupWriter.submit` and wait for the ACK. The writer takes
whatever is queued (up to `max_batch`), stores the raw rows, applies each message inside its
own savepoint (a message that cannot be applied rolls back alone and is answered AE, the others
are unaffected), commits once, and only then releases the ACKs: nothing is acknowledged before
its raw row (and, for AA, its application) is durable. While one commit is in flight the next
batch fills up, so the cost of a commit is shared by every connection waiting.

If the batch's transaction itself fails, every message of it is retried in a transaction of
its own, so one bad message cannot refuse the others; a message whose own transaction fails
(the database is down) is answered AR 207 and not stored: the sender will send it again.
Order hooks run on a separate thread after the commit, so a slow hook never delays ACKs (the
committed Order row is the truth; the worker re-checks it before drafting and delivering).
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import Hl7Message, db_now
from radraft.core.errors import Hl7Error
from radraft.ehr.apply import PATIENT_CACHE, OrderChange, apply_message
from radraft.ehr.intake import Intake, error_from_text, error_text, intake
from radraft.ehr.mllp import build_ack

log = logging.getLogger(__name__)
OnOrderChange = Callable[[OrderChange], None]
MAX_BATCH = 256
# Group commit waits LINGER_S (or a quarter of a batch cycle when commits are slow) for the
# connections that sent within RECENT_S (or three cycles); a lone connection never waits.
LINGER_S = 0.002
RECENT_S = 0.05


@dataclass
class _Pending:
    raw: bytes
    peer: str
    future: concurrent.futures.Future[bytes] = field(default_factory=concurrent.futures.Future)


@dataclass
class _Outcome:
    ack: bytes
    changes: list[OrderChange] = field(default_factory=list)


def _text(value: str) -> str:
    return value.replace("\x00", "")


class _NeedsCare(Exception):
    """A message of the batch cannot be applied: redo the batch with one savepoint each."""


def store_batch(
    session: Session, items: Sequence[tuple[Intake, bytes, str]], *, careful: bool = True,
) -> list[_Outcome]:
    """Store and apply `items` (intake, raw, peer) in the session's transaction (caller commits).

    careful=False applies without savepoints (two round trips less per message) and raises
    _NeedsCare at the first message that cannot be applied; the caller then rolls back and
    calls again with careful=True.
    """
    now = db_now(session)
    digests = {item.sha256 for item, _, _ in items}
    known: dict[tuple[str, str, str], tuple[str, str]] = {
        (row.control_id, row.sending_facility, row.sha256): (row.ack_code, row.error)
        for row in session.execute(select(
            Hl7Message.control_id, Hl7Message.sending_facility, Hl7Message.sha256,
            Hl7Message.ack_code, Hl7Message.error).where(Hl7Message.sha256.in_(digests)))}
    rows: dict[tuple[str, str, str], Hl7Message] = {}
    for item, raw, peer in items:
        if item.key in known or item.key in rows or item.msg is None:
            continue
        msg = item.msg
        # Optimistically AA: the row and its application commit together or not at all.
        # (NUL, which PostgreSQL refuses in text, never keeps the raw row from being stored.)
        rows[item.key] = Hl7Message(
            control_id=_text(item.control_id), sending_application=_text(msg.get("MSH", 3))[:128],
            sending_facility=_text(item.facility), message_type=_text(msg.message_type)[:16],
            version=_text(msg.get("MSH", 12))[:16], raw=raw, sha256=item.sha256, peer=peer[:64],
            received_at=now, ack_code=item.code or "AA",
            error=error_text(item.error) if item.error else "",
            applied_at=None if item.code else now)
    session.add_all(rows.values())
    session.flush()  # raw rows first: the savepoints below never undo them
    outcomes: list[_Outcome] = []
    done: dict[tuple[str, str, str], bytes] = {}
    for item, _, _ in items:
        assert item.msg is not None
        if item.key in done:  # the same message twice in this batch: the first one's answer
            outcomes.append(_Outcome(done[item.key]))
            continue
        if item.key in known:  # a duplicate: its first answer, not applied again
            code, text = known[item.key]
            outcome = _Outcome(build_ack(item.msg, code or "AA",
                                         error_from_text(text, reject=code == "AR")))
        elif item.code:  # refused or wrong before applying: stored with its answer
            outcome = _Outcome(build_ack(item.msg, item.code, item.error))
        else:
            outcome = _apply(session, item, rows[item.key], careful)
        done[item.key] = outcome.ack
        outcomes.append(outcome)
    return outcomes


def _apply(session: Session, item: Intake, row: Hl7Message, careful: bool) -> _Outcome:
    assert item.msg is not None
    try:
        if careful:
            with session.begin_nested():
                changes = apply_message(session, item.msg, row.id, row.received_at)
                session.flush()  # a value the database refuses fails here, inside the savepoint
        else:
            changes = apply_message(session, item.msg, row.id, row.received_at)
    except Hl7Error as exc:
        problem = exc
    except (DataError, IntegrityError) as exc:  # a value the database refuses
        problem = Hl7Error(f"cannot apply: {type(exc.orig).__name__}: "
                           f"{str(exc.orig).splitlines()[0][:120]}", code="207")
    else:
        return _Outcome(build_ack(item.msg, "AA"), changes)
    if not careful:
        raise _NeedsCare from problem
    session.info.pop(PATIENT_CACHE, None)  # it may hold rows the savepoint took back
    row.ack_code, row.applied_at, row.error = "AE", None, error_text(problem)
    return _Outcome(build_ack(item.msg, "AE", problem))


class GroupWriter:
    """The single writer thread (and the thread that runs order hooks after each commit)."""

    def __init__(
        self, sessions: sessionmaker[Session], *, processing_ids: frozenset[str],
        on_order_change: OnOrderChange | None = None, max_batch: int = MAX_BATCH,
    ) -> None:
        self._sessions, self._hook, self._max = sessions, on_order_change, max_batch
        self._processing_ids = processing_ids
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._hooks: queue.SimpleQueue[OrderChange | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._recent: dict[str, float] = {}  # peer -> when it last submitted (monotonic)
        self._cycle_s = 0.0  # how long the last batch took
        self.commits = 0  # transactions committed, and the messages in them (bench, tests)
        self.committed_messages = 0

    def start(self) -> None:
        self._threads = [threading.Thread(target=self._run, name="hl7-writer", daemon=True),
                         threading.Thread(target=self._run_hooks, name="hl7-hooks",
                                          daemon=True)]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Finish what is queued, then stop both threads."""
        self._queue.put(None)
        self._hooks.put(None)
        for thread in self._threads:
            thread.join(30)

    def submit(self, raw: bytes, peer: str) -> concurrent.futures.Future[bytes]:
        pending = _Pending(raw, peer)
        now = time.monotonic()
        self._recent[peer] = now
        if len(self._recent) > 1024:  # forget connections long gone
            self._recent = {p: t for p, t in self._recent.items() if now - t < 1.0}
        self._queue.put(pending)
        return pending.future

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            # a quarter of a batch cycle (2 ms at least, 20 ms at most): waiting that long to
            # share a commit costs less than the commit it saves
            deadline = time.monotonic() + min(max(LINGER_S, self._cycle_s / 4), 0.02)
            while len(batch) < self._max:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    # Wait a little for the connections that were sending a moment ago: their
                    # next message shares this commit instead of paying for its own.
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or not self._expected(batch):
                        break
                    try:
                        item = self._queue.get(timeout=remaining)
                    except queue.Empty:
                        break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            started = time.monotonic()
            try:
                self._process(batch)
                self._cycle_s = time.monotonic() - started
            except Exception as exc:  # never leave a connection waiting for an answer
                log.exception("HL7 writer: batch of %d failed", len(batch))
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_result(build_ack(None, "AR", Hl7Error(
                            f"internal error: {type(exc).__name__}", code="207", reject=True)))

    def _expected(self, batch: list[_Pending]) -> bool:
        """Whether a connection that sent recently (within RECENT_S, or three batch cycles
        when commits are slow) is not in `batch` yet."""
        now, present = time.monotonic(), {p.peer for p in batch}
        window = max(RECENT_S, 3 * self._cycle_s)
        return any(now - t < window and p not in present
                   for p, t in list(self._recent.items()))

    def _process(self, batch: list[_Pending]) -> None:
        intakes = [intake(p.raw, processing_ids=self._processing_ids) for p in batch]
        storable = [(i, p) for i, p in zip(intakes, batch, strict=True) if i.msg is not None]
        for item, pending in zip(intakes, batch, strict=True):
            if item.msg is None:  # no usable MSH: nothing to store or echo
                pending.future.set_result(build_ack(None, "AR", item.error))
        outcomes = self._commit(storable)
        if outcomes is None:  # the batch failed as a whole: each message on its own
            outcomes = [(self._commit([one]) or [_unavailable(one[0])])[0] for one in storable]
        for (item, pending), outcome in zip(storable, outcomes, strict=True):
            pending.future.set_result(outcome.ack)
            # identifiers only (no PHI): type, control id, peer, answer
            log.info("HL7 %s %s from %s: %s", item.msg.message_type if item.msg else "",
                     item.control_id, pending.peer, _code(outcome.ack))
            for change in outcome.changes if self._hook is not None else []:
                self._hooks.put(change)

    def _commit(self, items: list[tuple[Intake, _Pending]]) -> list[_Outcome] | None:
        if not items:
            return []
        batch = [(i, p.raw, p.peer) for i, p in items]
        try:
            try:
                with self._sessions() as session:
                    outcomes = store_batch(session, batch, careful=False)
                    session.commit()  # durable before anything is acknowledged
            except (_NeedsCare, DataError, IntegrityError):
                # a message that cannot be applied (or a value refused at the final flush):
                # again, each message in a savepoint of its own
                with self._sessions() as session:
                    outcomes = store_batch(session, batch, careful=True)
                    session.commit()
        except SQLAlchemyError as exc:
            log.warning("HL7 writer: transaction of %d message(s) failed: %s", len(items),
                        str(exc).splitlines()[0][:200])
            return None
        self.commits += 1
        self.committed_messages += len(items)
        return outcomes

    def _run_hooks(self) -> None:
        while (change := self._hooks.get()) is not None:
            if self._hook is None:
                continue
            try:
                self._hook(change)
            except Exception:  # a failing hook must not stop later ones
                log.exception("HL7 order hook failed for accession %s", change.accession)


def _code(ack: bytes) -> str:
    return ack.partition(b"\rMSA|")[2][:2].decode("ascii", "replace")


def _unavailable(item: Intake) -> _Outcome:
    return _Outcome(build_ack(item.msg, "AR", Hl7Error(
        "message store unavailable, send again later", code="207", reject=True)))
