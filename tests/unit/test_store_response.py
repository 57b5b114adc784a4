"""The node's direct C-STORE-RSP encoding is byte for byte what pynetdicom would send."""

from __future__ import annotations

import pytest
from pynetdicom.dimse_messages import C_STORE_RSP
from pynetdicom.dimse_primitives import C_ECHO, C_STORE
from pynetdicom.dsutils import encode

from radraft.dicom_node.fast.store_response import encode_store_response


def _response(status: int, message_id: int, sop_class: str | None,
              sop_instance: str | None) -> C_STORE:
    rsp = C_STORE()
    rsp.MessageIDBeingRespondedTo = message_id
    rsp.Status = status
    if sop_class is not None:
        rsp.AffectedSOPClassUID = sop_class
    if sop_instance is not None:
        rsp.AffectedSOPInstanceUID = sop_instance
    return rsp


def _pynetdicom_bytes(rsp: C_STORE) -> bytes:
    message = C_STORE_RSP()
    message.primitive_to_message(rsp)
    return bytes(encode(message.command_set, True, True))


@pytest.mark.parametrize("status", [0x0000, 0xA700, 0xA900, 0xC000, 0xB000, 0xFFFF])
@pytest.mark.parametrize("message_id", [1, 2, 65535])
@pytest.mark.parametrize(("sop_class", "sop_instance"), [
    ("1.2.840.10008.5.1.4.1.1.2", "1.2.826.0.1.3680043.8.498.1234567890123"),  # even, odd
    ("1.2.840.10008.5.1.4.1.1.4", "1.2.3.4"),  # odd, even
    ("1.3.12.2.1107.5.9.1", "1.2.826.0.1.3680043.10.1"),  # a private class
    (None, None),  # pynetdicom leaves absent UIDs out
])
def test_same_bytes_as_pynetdicom(status: int, message_id: int, sop_class: str | None,
                                  sop_instance: str | None) -> None:
    rsp = _response(status, message_id, sop_class, sop_instance)
    assert encode_store_response(rsp) == _pynetdicom_bytes(rsp)


def test_anything_else_goes_to_pynetdicom() -> None:
    with_comment = _response(0xC000, 1, "1.2.840.10008.5.1.4.1.1.2", "1.2.3")
    with_comment.ErrorComment = "cannot parse"
    assert encode_store_response(with_comment) is None
    offending = _response(0xA900, 1, "1.2.840.10008.5.1.4.1.1.2", "1.2.3")
    offending.OffendingElement = [0x00080018]
    assert encode_store_response(offending) is None
    request = C_STORE()
    request.MessageID = 1
    assert encode_store_response(request) is None  # a request, not a response
    echo = C_ECHO()
    echo.MessageIDBeingRespondedTo, echo.Status = 1, 0
    assert encode_store_response(echo) is None
