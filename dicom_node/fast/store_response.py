"""C-STORE-RSP command sets encoded directly, and sent in one P-DATA (PS3.7 9.3.1.2).

pynetdicom builds every response as a pydicom Dataset, encodes it twice (once for the
group length) and validates each UID again (cost: README). A response with a status and
nothing else has a fixed shape in Implicit VR Little Endian (PS3.7 6.3.1); one with an
Error Comment or Offending Element, or an association with a handler on EVT_DIMSE_SENT,
goes pynetdicom's way. A test compares
the bytes with pynetdicom's own encoding.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from pynetdicom import evt
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.pdu_primitives import P_DATA

if TYPE_CHECKING:
    from pynetdicom.association import Association

_HEADER = struct.Struct("<HHI")  # group 0000, element, value length (implicit VR)
_US = struct.Struct("<H")
_UL = struct.Struct("<I")
_C_STORE_RSP = 0x8001
_NO_DATA_SET = 0x0101
_LAST_COMMAND_FRAGMENT = b"\x03"


def _element(element: int, value: bytes) -> bytes:
    return _HEADER.pack(0x0000, element, len(value)) + value


def _uid(value: Any) -> bytes:
    raw = str(value).encode("ascii")
    return raw + b"\x00" if len(raw) % 2 else raw  # UI values are padded with NUL


def encode_store_response(rsp: Any) -> bytes | None:
    """The command set of a plain C-STORE-RSP, or None when pynetdicom must encode it."""
    if not isinstance(rsp, C_STORE) or rsp.MessageIDBeingRespondedTo is None:
        return None
    if rsp.Status is None or rsp.ErrorComment is not None or rsp.OffendingElement is not None:
        return None
    parts = []
    if rsp.AffectedSOPClassUID:
        parts.append(_element(0x0002, _uid(rsp.AffectedSOPClassUID)))
    parts += [
        _element(0x0100, _US.pack(_C_STORE_RSP)),
        _element(0x0120, _US.pack(rsp.MessageIDBeingRespondedTo)),
        _element(0x0800, _US.pack(_NO_DATA_SET)),
        _element(0x0900, _US.pack(rsp.Status)),
    ]
    if rsp.AffectedSOPInstanceUID:
        parts.append(_element(0x1000, _uid(rsp.AffectedSOPInstanceUID)))
    body = b"".join(parts)
    return _element(0x0000, _UL.pack(len(body))) + body


def send_store_responses_directly(assoc: Association) -> None:
    """Give one acceptor association the direct C-STORE-RSP path (others unchanged)."""
    dimse = assoc.dimse
    pynetdicom_send = dimse.send_msg

    def send_msg(primitive: Any, context_id: int) -> None:
        command = encode_store_response(primitive)
        limit = dimse.maximum_pdu_size
        if (command is None or assoc.get_handlers(evt.EVT_DIMSE_SENT)
                or (limit and len(command) > limit - 6)):
            pynetdicom_send(primitive, context_id)
            return
        pdata = P_DATA()
        pdata.presentation_data_value_list.append(
            (context_id, _LAST_COMMAND_FRAGMENT + command)
        )
        dimse.dul.send_pdu(pdata)

    dimse.send_msg = send_msg  # type: ignore[method-assign]
