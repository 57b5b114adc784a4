"""C-STORE SCU: send stored bytes as they are, map the status to a delivery outcome."""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO
from typing import Literal

from pydicom import dcmread
from pydicom.errors import InvalidDicomError
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from radraft.core.errors import PermanentDeliveryError, TransientDeliveryError
from radraft.dicom_node.client.peer import Peer, associate

# Warnings the PACS stored the object with (PS3.4 B.2.3): delivered.
WARNING_STATUSES = frozenset({0xB000, 0xB006, 0xB007})

StoreOutcome = Literal["delivered", "transient", "permanent"]


@dataclass(frozen=True, slots=True)
class StoreResult:
    status: int
    outcome: StoreOutcome
    sop_instance_uid: str


def classify_store_status(status: int) -> StoreOutcome:
    """0x0000 and the B0xx warnings are delivered; 0xA7xx (out of resources) and 0xFE00
    (cancelled) are transient; 0xA9xx, 0xCxxx and everything else unknown are permanent
    (retrying content the PACS refused would only repeat the refusal)."""
    if status == 0x0000 or status in WARNING_STATUSES:
        return "delivered"
    if status & 0xFF00 == 0xA700 or status == 0xFE00:
        return "transient"
    return "permanent"


def store_bytes(peer: Peer, payload: bytes) -> StoreResult:
    """C-STORE one Part 10 file's bytes to `peer` in the transfer syntax they were built in.

    Returns the result for delivered objects; raises Transient/PermanentDeliveryError.
    """
    try:
        ds = dcmread(BytesIO(payload))
    except (InvalidDicomError, EOFError, ValueError) as exc:
        raise PermanentDeliveryError(f"outbox bytes are not a DICOM file: {exc}") from exc
    sop_class = str(ds.SOPClassUID)
    sop_uid = str(ds.SOPInstanceUID)
    syntax = str(ds.file_meta.TransferSyntaxUID)
    # Offer the stored syntax first, plus the uncompressed ones every SCP supports (a
    # stored explicit-little-endian object converts losslessly to implicit).
    syntaxes = list(dict.fromkeys([syntax, ExplicitVRLittleEndian, ImplicitVRLittleEndian]))
    with associate(peer, [(sop_class, syntaxes)]) as assoc:
        status_ds = assoc.send_c_store(ds)
        if not status_ds or "Status" not in status_ds:
            raise TransientDeliveryError(
                f"{peer}: no C-STORE response for {sop_uid} (timeout or abort)"
            )
        status = int(status_ds.Status)
    outcome = classify_store_status(status)
    if outcome == "transient":
        raise TransientDeliveryError(f"{peer}: C-STORE {sop_uid} status 0x{status:04X}")
    if outcome == "permanent":
        raise PermanentDeliveryError(f"{peer}: C-STORE {sop_uid} refused, status 0x{status:04X}")
    return StoreResult(status=status, outcome=outcome, sop_instance_uid=sop_uid)
