"""Group commit: one writer thread stores and applies every waiting message in ONE transaction.

Connections hand their messages to `GroupWriter.answer` (or `submit`, from a thread) and wait
for the ACK. The writer takes whatever is queued (up to `max_batch`, lingering briefly for
connections that sent a moment ago), stores and applies the batch (`ehr.store`), commits once,
and only then releases the ACKs: nothing is acknowledged before its raw row (and, for AA, its
application) is durable. While one commit is in flight the next batch fills up, so the cost of
a commit is shared by every connection waiting.

Messages are applied without savepoints; when one cannot be applied, the batch is rolled back
and done again with a savepoint per message, so that one is answered AE and the others are
unaffected. If the batch's transaction itself fails, every message of it is retried in a
transaction of its own; a message whose own transaction fails (the database is down) is
answered AR 207 and not stored: the sender will send it again. Order hooks run on a separate
thread after the commit, so a slow hook never delays ACKs (the committed Order row is the
truth; the worker re-checks it before drafting and delivering).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.errors import Hl7Error
from radraft.ehr.apply import OrderChange
from radraft.ehr.intake import Intake, intake
from radraft.ehr.mllp import build_ack
from radraft.ehr.store import NeedsCare, Outcome, store_batch

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
    future: concurrent.futures.Future[bytes] | None = None  # a thread waits on it
    waiter: asyncio.Future[bytes] | None = None  # or a connection task
    answer: bytes | None = None


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
        """Finish what is queued (and the hooks it calls for), then stop both threads."""
        self._queue.put(None)
        if self._threads:
            self._threads[0].join(30)
        self._hooks.put(None)
        for thread in self._threads[1:]:
            thread.join(30)

    def submit(self, raw: bytes, peer: str) -> concurrent.futures.Future[bytes]:
        """Queue one message; the future gets its ACK once it is committed."""
        future: concurrent.futures.Future[bytes] = concurrent.futures.Future()
        self._put(_Pending(raw, peer, future=future))
        return future

    async def answer(self, raw: bytes, peer: str) -> bytes:
        """The ACK for one message, from an event loop (answers of a batch are handed to the
        loop in one wake-up, not one per message)."""
        waiter: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._put(_Pending(raw, peer, waiter=waiter))
        return await waiter

    def _put(self, pending: _Pending) -> None:
        now = time.monotonic()
        self._recent[pending.peer] = now
        if len(self._recent) > 1024:  # forget connections long gone
            self._recent = {p: t for p, t in self._recent.items() if now - t < 1.0}
        self._queue.put(pending)

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
            except Exception:  # never leave a connection waiting for an answer
                log.exception("HL7 writer: batch of %d failed", len(batch))
            finally:
                _release(batch)

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
                pending.answer = build_ack(None, "AR", item.error)
        outcomes = self._commit(storable)
        if outcomes is None:  # the batch failed as a whole: each message on its own
            outcomes = [(self._commit([one]) or [_unavailable(one[0])])[0] for one in storable]
        for (item, pending), outcome in zip(storable, outcomes, strict=True):
            pending.answer = outcome.ack
            # identifiers only (no PHI): type, control id, peer, answer
            log.info("HL7 %s %s from %s: %s", item.msg.message_type if item.msg else "",
                     item.control_id, pending.peer, _code(outcome.ack))
            for change in outcome.changes if self._hook is not None else []:
                self._hooks.put(change)

    def _commit(self, items: list[tuple[Intake, _Pending]]) -> list[Outcome] | None:
        if not items:
            return []
        batch = [(i, p.raw, p.peer) for i, p in items]
        try:
            try:
                with self._sessions() as session:
                    outcomes = store_batch(session, batch, careful=False)
                    session.commit()  # durable before anything is acknowledged
            except (NeedsCare, DataError, IntegrityError):
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


def _release(batch: list[_Pending]) -> None:
    """Hand every answer over: threads through their futures, each event loop in one call."""
    loops: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[bytes], bytes]]] = {}
    for pending in batch:
        ack = pending.answer or build_ack(None, "AR", Hl7Error(
            "internal error, send again later", code="207", reject=True))
        if pending.future is not None:
            pending.future.set_result(ack)
        elif pending.waiter is not None:
            loops.setdefault(pending.waiter.get_loop(), []).append((pending.waiter, ack))
    for loop, answers in loops.items():
        with contextlib.suppress(RuntimeError):  # that loop is closed: nobody is waiting
            loop.call_soon_threadsafe(_settle, answers)


def _settle(answers: list[tuple[asyncio.Future[bytes], bytes]]) -> None:
    for waiter, ack in answers:
        if not waiter.done():  # its connection may have been cancelled meanwhile
            waiter.set_result(ack)


def _code(ack: bytes) -> str:
    return ack.partition(b"\rMSA|")[2][:2].decode("ascii", "replace")


def _unavailable(item: Intake) -> Outcome:
    return Outcome(build_ack(item.msg, "AR", Hl7Error(
        "message store unavailable, send again later", code="207", reject=True)))
