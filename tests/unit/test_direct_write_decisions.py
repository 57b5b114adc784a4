"""The direct dataset writer: which PDUs go straight to the file, which stay pynetdicom's."""

from __future__ import annotations

import os
import queue
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from node_helpers import fast_socket

from radraft.dicom_node.fast.direct_write import DatasetWriteError, DirectDatasetWriter
from radraft.dicom_node.fast.received_file import ReceivedFile
from radraft.dicom_node.fast.transport import FastSocket

CONTEXT = 3


def pdu(*pdvs: tuple[int, int, bytes]) -> bytes:
    """A P-DATA-TF PDU of (context id, message control header, data) PDVs."""
    items = b"".join(struct.pack(">LBB", len(data) + 2, cx, control) + data
                     for cx, control, data in pdvs)
    return struct.pack(">BBL", 4, 0, len(items)) + items


def fragment(data: bytes, *, last: bool = False, command: bool = False,
             cx: int = CONTEXT) -> bytes:
    return pdu((cx, (2 if last else 0) | (1 if command else 0), data))


@dataclass
class Peer:
    """A FastSocket fed by a real socket, and the DUL/association around it."""

    fast: FastSocket
    sender: socket.socket
    file: ReceivedFile
    original_calls: list[bytes] = field(default_factory=list)
    writer: DirectDatasetWriter = field(init=False)
    dul: Any = field(init=False)

    def __post_init__(self) -> None:
        self.dul = SimpleNamespace(
            socket=self.fast, state_machine=SimpleNamespace(current_state="Sta6"),
            event_queue=queue.SimpleQueue(), to_provider_queue=queue.Queue(),
            _kill_thread=False)
        message = SimpleNamespace(_data_set_file=self.file, context_id=CONTEXT)
        assoc: Any = SimpleNamespace(dul=self.dul, dimse=SimpleNamespace(message=message))
        self.writer = DirectDatasetWriter(assoc, self._original)

    def _original(self) -> None:
        """pynetdicom's reader, as far as the stream goes: it consumes one whole PDU."""
        head = self.fast.recv(6)
        self.original_calls.append(bytes(head + self.fast.recv(struct.unpack(">BBL", head)[2])))

    def written(self) -> bytes:
        self.file.flush()
        return Path(self.file.name).read_bytes()


@pytest.fixture
def peer(tmp_path: Path) -> Iterator[Peer]:
    sender, receiver = socket.socketpair()
    fast = fast_socket(receiver)
    file = ReceivedFile(str(tmp_path / "rx.dcm"))
    yield Peer(fast, sender, file)
    file.close()
    sender.close()
    receiver.close()
    os.close(fast._wake_fd)


def test_mid_dataset_fragments_are_written_and_the_last_one_is_left(peer: Peer) -> None:
    parts = [os.urandom(n) for n in (16_372, 16_372, 300, 16_372)]
    last = fragment(b"end", last=True)
    peer.sender.sendall(b"".join(fragment(p) for p in parts) + last)
    peer.writer.read_pdu()  # every buffered fragment PDU in one call
    while peer.writer.fragments < len(parts):
        peer.writer.read_pdu()
    assert peer.written() == b"".join(parts)
    assert peer.original_calls == []
    peer.writer.read_pdu()  # the last fragment completes the message: pynetdicom's path
    assert peer.original_calls == [last]
    assert peer.written() == b"".join(parts)


def test_a_fragment_longer_than_the_read_ahead_streams_to_the_file(peer: Peer) -> None:
    big = os.urandom(1_000_000)
    sending = threading.Thread(target=peer.sender.sendall, args=(fragment(big),))
    sending.start()
    peer.writer.read_pdu()
    sending.join()
    assert peer.writer.fragments == 1
    assert peer.written() == big


@pytest.mark.parametrize("other", [
    fragment(b"cmd", command=True),  # a command set
    fragment(b"x", cx=CONTEXT + 2),  # another presentation context
    pdu((CONTEXT, 0, b"a"), (CONTEXT, 0, b"b")),  # two PDVs in one PDU
    struct.pack(">BBL", 5, 0, 4) + b"\x00" * 4,  # A-RELEASE-RQ (10 bytes: no 12-byte peek)
    struct.pack(">BBL", 4, 0, 3) + b"abc",  # a P-DATA-TF too short to hold a PDV
])
def test_every_other_pdu_is_left_to_pynetdicom(peer: Peer, other: bytes) -> None:
    peer.sender.sendall(other)
    peer.writer.read_pdu()
    assert peer.original_calls == [other]
    assert peer.written() == b""


def test_nothing_bypasses_while_the_state_machine_has_events_queued(peer: Peer) -> None:
    peer.dul.event_queue.put("Evt10")  # a PDU read before and not yet acted on
    data = fragment(b"later")
    peer.sender.sendall(data)
    peer.writer.read_pdu()
    assert peer.original_calls == [data]
    assert peer.writer.fragments == 0


def test_a_peer_that_closes_inside_a_fragment_is_a_closed_transport(peer: Peer) -> None:
    whole = fragment(os.urandom(5000))
    peer.sender.sendall(whole[:2000])
    peer.sender.shutdown(socket.SHUT_WR)
    peer.writer.read_pdu()
    assert peer.dul.event_queue.get_nowait() == "Evt17"
    assert peer.writer.fragments == 0


def test_a_pending_response_stops_the_batch_after_the_current_pdu(peer: Peer) -> None:
    peer.sender.sendall(fragment(b"one") + fragment(b"two"))
    peer.dul.to_provider_queue.put("P-DATA")  # something to send: the reactor's turn
    peer.writer.read_pdu()
    assert peer.writer.fragments == 1
    peer.writer.read_pdu()
    assert peer.writer.fragments == 2
    assert peer.written() == b"onetwo"


def test_a_failed_file_write_aborts_instead_of_reading_as_a_closed_socket(
        peer: Peer, tmp_path: Path) -> None:
    peer.sender.sendall(fragment(b"lost"))
    readonly = tmp_path / "readonly"
    readonly.write_bytes(b"")
    fd = os.open(readonly, os.O_RDONLY)
    os.dup2(fd, peer.file.fileno())  # the received file's descriptor now refuses writes
    os.close(fd)
    with pytest.raises(DatasetWriteError):
        peer.writer.read_pdu()  # pynetdicom's reactor turns this into an A-ABORT
    assert peer.dul.event_queue.empty()
