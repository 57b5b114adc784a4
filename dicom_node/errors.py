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


class InflateLimit(StoreRefused):
    """A deflated dataset inflates past `dicom.max_inflated_bytes` or `max_inflate_ratio`."""

    status = STATUS_OUT_OF_RESOURCES


class InvalidIdentifier(StoreRefused):
    """A UID that is not a valid UID (over 64 characters, characters other than digits and
    dots, empty components), or an identifier longer than the index keeps: refused rather
    than altered (a truncated UID could merge two studies). Status 0xA900: a Type 1
    attribute with an invalid value makes the dataset not match its SOP Class."""

    status = STATUS_IDENTITY_MISMATCH
