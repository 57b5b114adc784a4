"""Why an instance was refused, each carrying the C-STORE status it answers."""

from __future__ import annotations

from radraft.core.errors import IngestError

# C-STORE failure statuses (PS3.4 Table B.2-1 and GG.4-1).
STATUS_SUCCESS = 0x0000
STATUS_OUT_OF_RESOURCES = 0xA700
STATUS_IDENTITY_MISMATCH = 0xA900
STATUS_CANNOT_UNDERSTAND = 0xC000
# Processing failure (PS3.7 C.4.2): the node itself failed (database down, disk error).
STATUS_PROCESSING_FAILURE = 0x0110


class StoreRefused(IngestError):
    """An instance the node refuses; `status` is the C-STORE status to answer."""

    status = STATUS_PROCESSING_FAILURE


class OutOfSpace(StoreRefused):
    """Free disk is below `dicom.min_free_bytes` even after purging."""

    status = STATUS_OUT_OF_RESOURCES


class IdentityMismatch(StoreRefused):
    """The dataset's UIDs are missing or differ from the command's Affected UIDs."""

    status = STATUS_IDENTITY_MISMATCH


class CannotUnderstand(StoreRefused):
    """The dataset cannot be parsed."""

    status = STATUS_CANNOT_UNDERSTAND


class NodeStartError(IngestError):
    """The node could not start (port taken, a receiving process died at start)."""
