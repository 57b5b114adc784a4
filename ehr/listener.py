"""asyncio MLLP listener: store raw + commit, apply, then ACK (original mode)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import ssl
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import Hl7Message, db_now
from radraft.core.errors import Hl7Error
from radraft.core.settings import Settings
from radraft.ehr.apply import OrderChange, apply_message
from radraft.ehr.er7 import Message, parse
from radraft.ehr.mllp import END, START, build_ack, frame

log = logging.getLogger(__name__)
OnOrderChange = Callable[[OrderChange], None]


def handle_message(
    sessions: sessionmaker[Session], raw: bytes, peer: str,
    on_order_change: OnOrderChange | None = None,
) -> bytes:
    """Store, commit, apply one message; the ACK bytes. Duplicates are ACKed, not re-applied."""
    try:
        msg: Message | None = parse(raw)
    except Hl7Error as exc:
        return build_ack(None, "AR", exc)
    assert msg is not None
    control = msg.get("MSH", 10)
    if not control:
        return build_ack(msg, "AR", Hl7Error("MSH-10 (control id) is empty", field=10,
                                             code="101", reject=True))
    digest = hashlib.sha256(raw).hexdigest()
    facility = msg.get("MSH", 4)[:128]
    with sessions() as session:
        existing = session.scalars(select(Hl7Message).where(
            Hl7Message.control_id == control[:64], Hl7Message.sending_facility == facility,
            Hl7Message.sha256 == digest)).first()
        if existing is not None:
            return build_ack(msg, existing.ack_code or "AA")
        row = Hl7Message(
            control_id=control[:64], sending_application=msg.get("MSH", 3)[:128],
            sending_facility=facility, message_type=msg.message_type[:16],
            version=msg.get("MSH", 12)[:16], raw=raw, sha256=digest, peer=peer[:64],
            received_at=db_now(session))
        session.add(row)
        session.commit()  # durable before anything is acknowledged
        changes: list[OrderChange] = []
        try:
            changes = apply_message(session, msg, row.id, db_now(session))
            row.ack_code, row.applied_at = "AA", db_now(session)
            session.commit()
            ack = build_ack(msg, "AA")
        except SQLAlchemyError as exc:  # a value the database refuses: stored, not applied
            session.rollback()
            error = Hl7Error(f"cannot apply: {type(exc).__name__}: {str(exc).splitlines()[0]}",
                             code="207")
            row.ack_code, row.error = "AE", error.reason
            session.commit()
            ack = build_ack(msg, "AE", error)
        except Hl7Error as exc:
            session.rollback()
            row.ack_code, row.error = "AE", str(exc)
            session.commit()
            ack = build_ack(msg, "AE", exc)
    log.info("HL7 %s %s from %s: %s", msg.message_type, control, peer, ack.split(b"|")[12:13])
    for change in changes if on_order_change else []:
        assert on_order_change is not None
        on_order_change(change)
    return ack


async def _serve_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, settings: Settings,
    sessions: sessionmaker[Session], on_order_change: OnOrderChange | None,
) -> None:
    peer = str(writer.get_extra_info("peername"))
    limit = settings.hl7.max_message_bytes
    buffer = b""
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), settings.hl7.idle_timeout_s)
            if not chunk:
                return
            buffer += chunk
            while END in buffer:
                block, buffer = buffer.split(END, 1)
                body = block[block.find(START) + 1:] if START in block else block
                if len(body) > limit:
                    ack = build_ack(None, "AR", Hl7Error(
                        f"message of {len(body)} bytes exceeds {limit}", code="100", reject=True))
                else:
                    ack = await asyncio.to_thread(
                        handle_message, sessions, body, peer, on_order_change)
                writer.write(frame(ack))
                await writer.drain()
            if len(buffer) > limit:
                log.warning("HL7 from %s: unframed data over %d bytes, closing", peer, limit)
                return
    except (TimeoutError, ConnectionError):
        return
    finally:
        writer.close()


async def run_listener(
    settings: Settings, session_factory: sessionmaker[Session], *,
    on_order_change: OnOrderChange | None = None, ready: asyncio.Event | None = None,
) -> None:
    """Serve MLLP on settings.hl7.host:port until cancelled (TLS when cert and key are set)."""
    tls: ssl.SSLContext | None = None
    if settings.hl7.tls_cert and settings.hl7.tls_key:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(settings.hl7.tls_cert, settings.hl7.tls_key)
    server = await asyncio.start_server(
        lambda r, w: _serve_connection(r, w, settings, session_factory, on_order_change),
        settings.hl7.host, settings.hl7.port, ssl=tls)
    log.info("HL7 MLLP listener on %s:%d", settings.hl7.host, settings.hl7.port)
    if ready is not None:
        ready.set()
    async with server:
        await server.serve_forever()
