"""asyncio MLLP listener: frames in, group-committed store + apply, then the ACK (original mode).

Each connection is read by its own task; messages of one connection are answered in order
(the next frame is handled after the previous ACK), messages of different connections share
the writer's transactions (`ehr.writer`). A connection is closed on a framing violation, on
`hl7.idle_timeout_s` without a byte, or when a started frame is not finished within
`hl7.frame_timeout_s`; every complete frame gets an answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl

from sqlalchemy.orm import Session, sessionmaker

from radraft.core.errors import Hl7Error
from radraft.core.peers import AllowList, cert_common_name
from radraft.core.settings import Settings
from radraft.core.tls import server_context
from radraft.ehr.er7 import parse, split_batch
from radraft.ehr.framing import Deframer, Frame, Oversize, Truncated, Violation
from radraft.ehr.mllp import build_ack, build_batch_ack, frame
from radraft.ehr.writer import GroupWriter, OnOrderChange

log = logging.getLogger(__name__)

__all__ = ["OnOrderChange", "run_listener"]


async def _answer(writer: GroupWriter, body: bytes, peer: str, max_batch: int) -> bytes:
    """The ACK for one frame: a message, or a batch (FHS/BHS) answered by a batch of ACKs."""
    head = body.lstrip(b"\r\n")[:3]
    if head not in (b"FHS", b"BHS"):
        return await writer.answer(body, peer)
    reference = ""
    for line in body.replace(b"\n", b"\r").split(b"\r"):
        if line.startswith(b"BHS") and len(line) > 3:
            fields = line.split(line[3:4])
            reference = fields[10].decode("latin-1") if len(fields) > 10 else ""
    messages = split_batch(body)
    if len(messages) > max_batch:
        log.warning("HL7 from %s: batch of %d messages refused (hl7.max_batch_messages %d)",
                    peer, len(messages), max_batch)
        refused = build_ack(None, "AR", Hl7Error(
            f"batch of {len(messages)} messages refused: at most {max_batch} per batch "
            "(hl7.max_batch_messages); nothing was stored", code="207", reject=True))
        return build_batch_ack([refused], with_file_header=head == b"FHS",
                               reference=reference)
    acks = list(await asyncio.gather(*(writer.answer(m, peer) for m in messages)))
    return build_batch_ack(acks, with_file_header=head == b"FHS", reference=reference)


def _oversize_ack(event: Oversize, limit: int) -> bytes:
    try:  # echo MSH-10 when the head of the frame has a readable MSH
        msg = parse(event.head.split(b"\r")[0] + b"\r")
    except Hl7Error:
        msg = None
    return build_ack(msg, "AR", Hl7Error(
        f"message over {limit} bytes refused (received {event.size} so far)", code="207",
        reject=True))


async def _serve_connection(
    reader: asyncio.StreamReader, stream: asyncio.StreamWriter, settings: Settings,
    writer: GroupWriter,
) -> None:
    peer = str(stream.get_extra_info("peername"))[:64]
    deframer = Deframer(settings.hl7.max_message_bytes)
    loop = asyncio.get_running_loop()
    # hl7.frame_timeout_s bounds a whole frame, not each read: a sender trickling one byte
    # every few seconds (slowloris) is cut off when its frame's deadline passes.
    frame_deadline: float | None = None
    try:
        while True:
            if deframer.in_frame:
                if frame_deadline is None:
                    frame_deadline = loop.time() + settings.hl7.frame_timeout_s
                deadline = frame_deadline
            else:
                frame_deadline = None
                deadline = loop.time() + settings.hl7.idle_timeout_s
            async with asyncio.timeout_at(deadline):  # no task per read, unlike wait_for
                chunk = await reader.read(65536)
            if not chunk:
                return
            for event in deframer.feed(chunk):
                if isinstance(event, Frame | Oversize | Truncated):
                    frame_deadline = None  # the next frame gets its own deadline
                if isinstance(event, Frame):
                    ack = await _answer(writer, event.body, peer,
                                        settings.hl7.max_batch_messages)
                elif isinstance(event, Oversize):
                    log.warning("HL7 from %s: frame over %d bytes refused", peer,
                                settings.hl7.max_message_bytes)
                    ack = _oversize_ack(event, settings.hl7.max_message_bytes)
                elif isinstance(event, Truncated):
                    log.warning("HL7 from %s: a frame of %d bytes was cut short by a new "
                                "start block; dropped", peer, event.size)
                    continue
                else:
                    assert isinstance(event, Violation)
                    log.warning("HL7 from %s: %s; closing the connection", peer, event.reason)
                    return
                stream.write(frame(ack))
                await stream.drain()
    except TimeoutError:
        log.info("HL7 from %s: %s, closing", peer,
                 "frame not finished in time" if deframer.in_frame else "idle")
    except (ConnectionError, ssl.SSLError, OSError) as exc:
        log.info("HL7 from %s: connection lost (%s)", peer, type(exc).__name__)
    finally:
        stream.close()
        with contextlib.suppress(Exception):
            await stream.wait_closed()


def _allowed(stream: asyncio.StreamWriter, senders: AllowList) -> bool:
    """Whether hl7.allowed_senders lets this connection in; if not it is closed unread
    (no ACK: there is no message to answer, and nothing of it is parsed)."""
    if senders.open:
        return True
    peername = stream.get_extra_info("peername")
    address = str(peername[0]) if isinstance(peername, tuple) and peername else None
    name = cert_common_name(stream.get_extra_info("peercert"))
    if senders.allows(address, name):
        return True
    log.warning("HL7 connection from %s (certificate %s) refused: not in hl7.allowed_senders",
                address, name or "none")
    stream.close()
    return False


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """Server TLS when hl7.tls_cert and hl7.tls_key are set (client certificates required
    when hl7.tls_ca is set)."""
    hl7 = settings.hl7
    if not (hl7.tls_cert and hl7.tls_key):
        return None
    return server_context(hl7.tls_cert, hl7.tls_key, hl7.tls_ca)


async def run_listener(
    settings: Settings, session_factory: sessionmaker[Session], *,
    on_order_change: OnOrderChange | None = None, ready: asyncio.Event | None = None,
) -> None:
    """Serve MLLP on settings.hl7.host:port until cancelled; queued messages are finished
    (stored and answered) before it returns."""
    tls = tls_context(settings)
    senders = AllowList.parse(settings.hl7.allowed_senders, "hl7.allowed_senders")
    writer = GroupWriter(session_factory, processing_ids=frozenset(settings.hl7.processing_ids),
                         on_order_change=on_order_change)
    writer.start()
    connections: set[asyncio.Task[None]] = set()

    async def accept(reader: asyncio.StreamReader, stream: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if not _allowed(stream, senders):
            return
        connections.add(task)
        try:
            await _serve_connection(reader, stream, settings, writer)
        except asyncio.CancelledError:
            pass  # the listener is stopping: this connection ends here
        finally:
            connections.discard(task)

    server = await asyncio.start_server(accept, settings.hl7.host, settings.hl7.port, ssl=tls,
                                        ssl_handshake_timeout=30 if tls else None)
    log.info("HL7 MLLP listener on %s:%d%s", settings.hl7.host, settings.hl7.port,
             " (TLS)" if tls else "")
    if ready is not None:
        ready.set()
    try:
        async with server:
            await server.serve_forever()
    finally:
        server.close()
        for task in list(connections):
            task.cancel()
        await asyncio.gather(*connections, return_exceptions=True)
        await asyncio.to_thread(writer.stop)
