"""Commit before ACK, instrumented (as tests/integration/test_node_durability.py does for the
node); group commit shares transactions without letting one bad message refuse the others."""

from __future__ import annotations

import threading
import time
from typing import Any

from helpers.net import free_port
from hl7.client import MLLPClient
from mllp_helpers import ack_of, hl7_send, read_frame, running_listener
from sqlalchemy import event, func, select
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from radraft.core.db import Hl7Message, LabResult, make_engine, make_sessionmaker
from radraft.core.settings import Hl7Settings
from radraft.ehr.samples import demo_messages

LAB = demo_messages(accession="D", patient_id="PD")[1]
CONNECTIONS, PER_CONNECTION = 8, 15


def _message(connection: int, number: int) -> tuple[str, bytes]:
    control = f"D{connection}-{number}"
    message = LAB.replace(b"|LABD|", f"|{control}|".encode())
    if number % 5 == 4:  # every fifth message cannot be applied: PID-3 is empty
        message = message.replace(b"PID|1||PD^^^HOSP", b"PID|1||")
    return control, message


def test_ack_follows_the_commit_of_its_row(
    sessions: sessionmaker[Session], db_url: str,
) -> None:
    """Every commit is slowed down (50 ms before the database commits): an ACK written before
    its transaction committed would be seen before that commit in the event list."""
    events: list[tuple[str, Any]] = []
    lock = threading.Lock()

    def on_execute(state: ORMExecuteState) -> None:  # the raw rows' INSERT (one per batch)
        if state.is_insert and state.bind_mapper is not None and (
                state.bind_mapper.class_ is Hl7Message):
            params: Any = state.parameters
            rows = params if isinstance(params, list) else [params or {}]
            state.session.info.setdefault("controls", set()).update(
                r["control_id"] for r in rows)

    def after_commit(session: Session) -> None:
        with lock:
            events.append(("committed", frozenset(session.info.pop("controls", set()))))

    def slow_commit(_conn: object) -> None:
        time.sleep(0.05)

    engine = sessions.kw["bind"]
    event.listen(sessions, "do_orm_execute", on_execute)
    event.listen(sessions, "after_commit", after_commit)
    event.listen(engine, "commit", slow_commit)
    observer = make_sessionmaker(make_engine(db_url))  # a connection of its own

    failures: list[BaseException] = []

    def client(connection: int) -> None:
        try:
            _client(connection)
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            failures.append(exc)

    def _client(connection: int) -> None:
        with MLLPClient("127.0.0.1", port) as peer:
            peer.socket.settimeout(30)
            for number in range(PER_CONNECTION):
                control, message = _message(connection, number)
                peer.socket.sendall(b"\x0b" + message + b"\x1c\r")
                ack = ack_of(read_frame(peer.socket))
                code = str(ack.segment("MSA")[1])
                with lock:
                    events.append(("ack", (control, code)))
                with observer() as session:  # visible to anyone the moment the ACK is read
                    row = session.scalars(select(Hl7Message).where(
                        Hl7Message.control_id == control)).one()
                    assert row.ack_code == code

    with running_listener(sessions, Hl7Settings(host="127.0.0.1", port=free_port())) as port:
        threads = [threading.Thread(target=client, args=(c,)) for c in range(CONNECTIONS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    assert not failures, failures
    committed: set[str] = set()
    acks: dict[str, str] = {}
    for kind, detail in events:
        if kind == "committed":
            committed |= detail
        else:
            control, code = detail
            assert control in committed, f"{control} acknowledged before its commit"
            acks[control] = code
    total = CONNECTIONS * PER_CONNECTION
    assert len(acks) == total
    bad = {c for c in acks if int(c.split("-")[1]) % 5 == 4}
    assert {c for c, code in acks.items() if code == "AE"} == bad  # not one good one refused
    commits = sum(1 for kind, _ in events if kind == "committed")
    # group commit: transactions were shared (loosely: each client's observer query between
    # ACK and next message makes batches smaller on a loaded machine)
    assert commits < total * 0.75, commits
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(LabResult)) == total - len(bad)
        unapplied = session.scalars(select(Hl7Message.control_id).where(
            Hl7Message.applied_at.is_(None))).all()
        assert set(unapplied) == bad


def test_a_value_the_database_refuses_fails_alone(
    sessions: sessionmaker[Session], db_url: str,
) -> None:
    """PostgreSQL refuses NUL in text: that message is AE 207, its batch-mates are applied."""
    nul = LAB.replace(b"|LABD|", b"|NUL1|").replace(b"|1.1|", b"|1.\x001|")
    good = [LAB.replace(b"|LABD|", f"|OK{n}|".encode()) for n in range(6)]
    with running_listener(sessions, Hl7Settings(host="127.0.0.1", port=free_port())) as port:
        socks = [MLLPClient("127.0.0.1", port) for _ in range(7)]
        try:
            for sock, message in zip(socks, [nul, *good], strict=True):
                sock.socket.settimeout(30)
                sock.socket.sendall(b"\x0b" + message + b"\x1c\r")
            acks = [ack_of(read_frame(s.socket)) for s in socks]
        finally:
            for sock in socks:
                sock.close()
    codes = [str(a.segment("MSA")[1]) for a in acks]
    if db_url.startswith("postgresql"):
        assert codes == ["AE"] + ["AA"] * 6
        assert str(acks[0].segment("ERR")[3][0][0]) == "207"
    else:  # SQLite stores the NUL
        assert codes == ["AA"] * 7
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Hl7Message)) == 7
        assert session.scalar(select(func.count()).select_from(LabResult)) == 6 + (
            codes[0] == "AA")


def test_store_unavailable_is_answered_ar() -> None:
    down = make_sessionmaker(make_engine("postgresql://postgres@127.0.0.1:1/nowhere"))
    with running_listener(down, Hl7Settings(host="127.0.0.1", port=free_port())) as port:
        for _ in range(2):  # and the listener stays up
            ack = ack_of(hl7_send(port, LAB))
            assert (str(ack.segment("MSA")[1]), str(ack.segment("MSA")[2])) == ("AR", "LABD")
            assert str(ack.segment("ERR")[3][0][0]) == "207"
            assert "unavailable" in str(ack.segment("ERR")[3][0][1])
