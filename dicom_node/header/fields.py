"""The node's header values, read the same way from raw scanned bytes or from pydicom.

`RawFields` converts the raw elements of `core.dicom_scan` directly (ASCII is ASCII in
every DICOM character set; anything else goes through pydicom's own decoder), and
`DatasetFields` reads a pydicom dataset (big endian, deflate, odd files). Both give what
`Dataset.get` would, trimmed as the index stores it; tests compare them on every sample.
"""

from __future__ import annotations

from typing import Any, Protocol

from pydicom.charset import convert_encodings, decode_bytes
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset

from radraft.core.dicom_scan import RawHeader

# Only these tags are read (pydicom stops decoding the rest): cheap on 500 KB images.
TAGS = [
    "SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "Modality",
    "PatientID", "IssuerOfPatientID", "AccessionNumber", "StudyDate", "StudyDescription",
    "BodyPartExamined", "InstitutionName", "PatientAge", "PatientBirthDate", "PatientSex",
    "SeriesNumber", "SeriesDescription", "InstanceNumber", "Manufacturer",
]
_TAG_OF: dict[str, int] = {k: int(tag_for_keyword(k) or 0) for k in TAGS}
TAG_NUMBERS = list(_TAG_OF.values())
# The raw scan stops after the last of them, Instance Number (0020,0013).
STOP_TAG = max(_TAG_OF.values()) + 1
_CHARSET = 0x00080005
# Text VRs whose values pydicom decodes with the Specific Character Set.
_CHARSET_VRS = frozenset({"LO", "LT", "PN", "SH", "ST", "UC", "UT"})


class HeaderFields(Protocol):
    transfer_syntax: str

    def text(self, keyword: str, limit: int | None = 64) -> str: ...

    def integer(self, keyword: str) -> int | None: ...


def _trimmed(value: str, limit: int | None) -> str:
    """Padding removed; cut to `limit` characters (descriptions only: identifiers are read
    with None and refused when too long, never cut)."""
    value = value.strip().strip("\x00").strip()
    return value if limit is None else value[:limit]


def _to_int(value: str) -> int | None:
    """An IS value as pydicom reads it (a fraction truncated); junk or several give None."""
    value = value.strip(" \x00")
    if not value or "\\" in value:
        return None
    try:
        return int(value)
    except ValueError:
        try:
            return int(float(value))
        except (ValueError, OverflowError):
            return None


class RawFields:
    """Values of a `RawHeader` (little endian, top-level elements only)."""

    def __init__(self, raw: RawHeader) -> None:
        self.raw = raw
        self.transfer_syntax = raw.transfer_syntax
        self._encodings: list[str] | None = None

    def _encodings_of(self) -> list[str]:
        if self._encodings is None:
            found = self.raw.elements.get(_CHARSET)
            names: list[str] = []
            if found is not None and found[1]:
                names = [n.strip() for n in found[1].decode("ascii").split("\\")]
            self._encodings = convert_encodings(names or None)
        return self._encodings

    def _string(self, keyword: str) -> str | None:
        vr, value = self.raw.elements.get(_TAG_OF[keyword], (None, None))
        if value is None:
            return None
        if value.isascii():
            decoded = value.decode("ascii")
        elif vr in _CHARSET_VRS or vr is None:
            decoded = decode_bytes(value, self._encodings_of(), set())
        else:
            decoded = value.decode("latin-1")
        # pydicom splits multi-values and trims each; the index joins them again.
        return "\\".join(part.rstrip(" \x00") for part in decoded.split("\\"))

    def text(self, keyword: str, limit: int | None = 64) -> str:
        value = self._string(keyword)
        return _trimmed(value, limit) if value else ""

    def integer(self, keyword: str) -> int | None:
        value = self._string(keyword)
        return _to_int(value) if value else None


class DatasetFields:
    """Values of a pydicom dataset."""

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds
        meta: Any = getattr(ds, "file_meta", None)
        self.transfer_syntax = str(getattr(meta, "TransferSyntaxUID", "") or "")

    def text(self, keyword: str, limit: int | None = 64) -> str:
        value = self.ds.get(keyword)
        if value is None or value == "":
            return ""
        if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
            value = "\\".join(str(v) for v in value)
        return _trimmed(str(value), limit)

    def integer(self, keyword: str) -> int | None:
        try:
            value = self.ds.get(keyword)
            return int(value) if value not in (None, "") else None
        except (TypeError, ValueError):
            return None  # IS values in the wild carry junk; the index lives without them
