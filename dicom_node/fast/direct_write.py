"""Dataset fragments of a C-STORE in progress go from the socket to its file directly.

A 512 KiB CT instance sent in 16 KiB PDUs is 32 P-DATA-TF PDUs. pynetdicom 3.0.4 reads
each into a bytearray, copies it twice more (`bytestream +=`, `bytes(...)`), decodes it
into PDU and primitive objects, queues an Evt10 for its state machine, whose DT-2 action
hands the primitive to DIMSE, which copies the fragment once more (`data[1:]`) and writes
it, all on the thread every byte of the association waits for (cost: README).

Once the command set of a C-STORE-RQ has been decoded and its dataset file opened
(chunked receive), a PDU holding one PDV that is a dataset fragment, not the last, of the
same presentation context changes nothing but that file: in state Sta6, Evt10 → DT-2 →
`decode_msg` only appends the fragment. `read_pdu` writes such PDUs' fragments straight
from the socket's read-ahead to the file. Every other PDU — the command, the
last fragment (which completes the message and queues it), several PDVs, another context,
ACSE PDUs, anything malformed — takes pynetdicom's own path, unchanged. So does every PDU
while the state machine still has events queued (it has not yet seen the PDUs before).

Not used when handlers are bound to EVT_DATA_RECV or EVT_PDU_RECV (they would miss PDUs).
A PDU longer than the association accepts is left to pynetdicom's reader, where
`FastSocket.recv` refuses it. While free disk is short (`SpaceWatch.discard`) fragments
are received but not written: the C-STORE is refused 0xA700 when it completes.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pynetdicom import evt

from radraft.dicom_node.fast.received_file import ReceivedFile

if TYPE_CHECKING:
    from pynetdicom.association import Association

    from radraft.dicom_node.fast.transport import FastSocket

_P_DATA_TF = 0x04
_PDU_HEADER = 6  # type, reserved, length (4)
_PDV_HEADER = 6  # item length (4), presentation context id, message control header
_CONTROL_BITS = 0x03  # bit 0: command (1) / dataset (0); bit 1: last fragment
_DATASET_NOT_LAST = 0x00
_LENGTH = struct.Struct(">L")
_IOV_MAX = 1024  # Linux's limit of buffers per writev


class DirectDatasetWriter:
    """`_read_pdu_data` for one accelerated association's DUL (see the module docstring).

    One call takes every bypassing PDU already in the read-ahead, not just one: pynetdicom's
    reactor sleeps (`time.sleep(0)`, a GIL hand-off) after a call that queued no event. Their
    fragments, still in the read-ahead, are written with one `writev` before anything is
    received into it again.
    """

    def __init__(self, assoc: Association, original: Callable[[], None],
                 discard: Callable[[], bool] = lambda: False) -> None:
        self._assoc = assoc
        self._dul = assoc.dul
        self._original = original
        # True while free disk is short (and the association's C-STORE marked refused).
        self._discard = discard
        self.fragments = 0  # PDUs written directly (tests read it)

    def read_pdu(self) -> None:
        target = self._target()
        if target is None:
            self._original()
            return
        context_id, fd = target
        sock: FastSocket = self._dul.socket  # type: ignore[assignment]
        try:
            fragment = _fragment_length(sock, context_id)
            if fragment is None:
                self._original()  # nothing consumed: pynetdicom reads the PDU itself
                return
            self._bypass(sock, context_id, fd, fragment)
        except (OSError, TimeoutError):  # the socket (file errors are DatasetWriteError)
            self._dul.event_queue.put("Evt17")  # as pynetdicom: transport connection closed

    def _bypass(self, sock: FastSocket, context_id: int, fd: int, fragment: int) -> None:
        pending: list[memoryview] = []  # fragments in the read-ahead, not yet written
        try:
            while True:
                sock.skip(_PDU_HEADER + _PDV_HEADER)
                if sock.buffered >= fragment:
                    pending.append(sock.take(fragment))
                else:
                    self._write(fd, pending)  # before recv_to reuses the read-ahead
                    written = sock.recv_to(fragment, lambda piece: self._write(fd, [piece]))
                    if written != fragment:
                        self._dul.event_queue.put("Evt17")  # the peer closed inside the PDU
                        return
                self.fragments += 1
                # Go on only with a PDU already received, and nothing else to do meanwhile.
                if (sock.buffered < _PDU_HEADER + _PDV_HEADER or self._dul._kill_thread
                        or not self._dul.to_provider_queue.empty()):
                    return
                next_fragment = _fragment_length(sock, context_id)  # no receive: buffered
                if next_fragment is None:
                    return
                fragment = next_fragment
        finally:
            self._write(fd, pending)

    def _write(self, fd: int, views: list[memoryview]) -> None:
        if views and self._discard():
            views.clear()  # out of disk: the message is refused 0xA700 once complete
            return
        _write_all(fd, views)

    def _target(self) -> tuple[int, int] | None:
        """(context id, file descriptor) of the dataset being received, if PDUs may bypass."""
        dul = self._dul
        message: Any = self._assoc.dimse.message
        if message is None or dul.state_machine.current_state != "Sta6":
            return None
        file = getattr(message, "_data_set_file", None)
        # Only the node's unbuffered file: a buffered one may hold bytes not yet written.
        if not isinstance(file, ReceivedFile) or not dul.event_queue.empty():
            return None
        return int(message.context_id), file.fileno()


def _fragment_length(sock: FastSocket, context_id: int) -> int | None:
    """Bytes of dataset fragment in the next PDU, if it is one that may bypass."""
    head = sock.peek(_PDU_HEADER)
    if head is None or head[0] != _P_DATA_TF:
        return None
    pdu_length: int = _LENGTH.unpack_from(head, 2)[0]
    if pdu_length < _PDV_HEADER or pdu_length > sock.max_pdu:
        return None  # malformed, empty or too long: pynetdicom's reader says so
    # The peer declared pdu_length bytes, so its first PDV header is on its way.
    head = sock.peek(_PDU_HEADER + _PDV_HEADER)
    if head is None:
        return None
    pdv_length: int = _LENGTH.unpack_from(head, _PDU_HEADER)[0]
    if (pdv_length != pdu_length - 4 or pdv_length < 2 or head[10] != context_id
            or head[11] & _CONTROL_BITS != _DATASET_NOT_LAST):
        return None
    return pdv_length - 2


class DatasetWriteError(RuntimeError):
    """The received file could not be written: the association is aborted, as pynetdicom
    aborts it when its own write fails (not an OSError: those mean the socket closed)."""


def _write_all(fd: int, views: list[memoryview]) -> None:
    """Write every view, in order, however the kernel splits it; empties the list."""
    while views:
        try:
            written = os.writev(fd, views[:_IOV_MAX])
        except OSError as exc:
            raise DatasetWriteError(f"received dataset not written: {exc}") from exc
        if written <= 0:
            raise DatasetWriteError("received dataset not written: no bytes taken")
        while views and written >= len(views[0]):
            written -= len(views.pop(0))
        if written:
            views[0] = views[0][written:]


def install(assoc: Association, discard: Callable[[], bool] = lambda: False,
            ) -> DirectDatasetWriter | None:
    """Route this association's mid-dataset PDUs past pynetdicom's decoder (None: not used,
    because a handler wants to see every PDU)."""
    if assoc.get_handlers(evt.EVT_DATA_RECV) or assoc.get_handlers(evt.EVT_PDU_RECV):
        return None
    dul: Any = assoc.dul
    writer = DirectDatasetWriter(assoc, dul._read_pdu_data, discard)
    dul._read_pdu_data = writer.read_pdu  # the reactor looks it up on the instance
    return writer
