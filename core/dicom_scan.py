"""A strict reader of the top-level elements at the start of a little-endian DICOM file.

pydicom's `dcmread` costs 0.35-1 ms a file here, most of it building objects nobody looks
at. This reader walks the element headers of the file's first bytes with `struct` and keeps
each top-level element's raw bytes (sequences are stepped over, not parsed) up to a stop
tag: Pixel Data for frame assembly, the end of the groups it indexes for the DICOM node.
Anything unusual — no preamble, a dataset that is not little endian (big endian, deflated),
an unknown VR, lengths that do not fit, the stop tag not reached within 256 KiB — returns
None, and the caller reads the file with pydicom. Converting the raw values is the
caller's business (the node and `reporting.frames.headers` each do it their way).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

IMPLICIT_VR_LE = "1.2.840.10008.1.2"
PIXEL_DATA = 0x7FE00010
UNDEFINED_LENGTH = 0xFFFFFFFF
# Transfer syntaxes whose dataset is NOT explicit VR little endian (every other one is,
# encapsulated pixel data included): implicit is handled, these go to pydicom.
_NOT_LITTLE_ENDIAN = frozenset({
    "1.2.840.10008.1.2.2",  # explicit VR big endian (retired)
    "1.2.840.10008.1.2.1.99",  # deflated explicit VR little endian
    "1.2.840.10008.1.2.4.95",  # JPIP referenced deflate
})
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR",
             b"UT", b"UV"}
_VRS = _LONG_VRS | {b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS",
                    b"LO", b"LT", b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL",
                    b"US"}
_FIRST_READ = 16 << 10
_MAX_HEADER = 256 << 10
_HEAD = struct.Struct("<HH2sH")  # group, element, VR, short length (explicit VR)
_TAG_LENGTH = struct.Struct("<HHI")  # group, element, length (implicit VR, items)
_U32 = struct.Struct("<I")


class _Unusual(Exception):
    """Not a file this reader handles: pydicom reads it."""


@dataclass(frozen=True, slots=True)
class RawHeader:
    """Top-level elements before the stop tag: tag → (VR as in the file, None if implicit;
    raw bytes, None for a sequence: its items are pydicom's to read).

    `stop_tag` is the first element at or after the stop tag with its value's offset and
    length (UNDEFINED_LENGTH for encapsulated data); None when the dataset ended first.
    """

    elements: dict[int, tuple[str | None, bytes | None]]
    implicit: bool
    transfer_syntax: str
    stop_tag: int | None
    stop_vr: str | None
    value_offset: int
    value_length: int


def _element(buf: bytes, pos: int, implicit: bool) -> tuple[int, bytes | None, int, int]:
    """(tag, VR or None, value length, value position) of the element at `pos`."""
    if pos + 8 > len(buf):
        raise _Unusual
    if implicit:
        group, elem, length = _TAG_LENGTH.unpack_from(buf, pos)
        return (group << 16) | elem, None, length, pos + 8
    group, elem, vr, length = _HEAD.unpack_from(buf, pos)
    if group == 0xFFFE:  # item and delimiters carry no VR
        (length,) = _U32.unpack_from(buf, pos + 4)
        return (group << 16) | elem, None, length, pos + 8
    if vr not in _VRS:
        raise _Unusual
    if vr in _LONG_VRS:
        if pos + 12 > len(buf):
            raise _Unusual
        (length,) = _U32.unpack_from(buf, pos + 8)
        return (group << 16) | elem, vr, length, pos + 12
    return (group << 16) | elem, vr, length, pos + 8


def _skip_sequence(buf: bytes, pos: int, implicit: bool) -> int:
    """Position after an undefined-length sequence whose first item starts at `pos`."""
    while True:
        tag, _vr, length, pos = _element(buf, pos, True)
        if tag == _SEQUENCE_END:
            return pos
        if tag != _ITEM:
            raise _Unusual
        if length != UNDEFINED_LENGTH:
            pos += length
            continue
        while True:  # an undefined-length item: its elements up to the item delimiter
            tag, vr, length, pos = _element(buf, pos, implicit)
            if tag == _ITEM_END:
                break
            if length == UNDEFINED_LENGTH:
                if vr not in (None, b"SQ", b"UN"):
                    raise _Unusual
                pos = _skip_sequence(buf, pos, implicit or vr == b"UN")
            else:
                pos += length


def _walk(buf: bytes, pos: int, implicit: bool, stop_at: int, whole: bool,
          elements: dict[int, tuple[str | None, bytes | None]],
          ) -> tuple[int | None, str | None, int, int]:
    """Top-level elements into `elements`; returns the stop element (see RawHeader)."""
    while True:
        if whole and pos == len(buf):
            return None, None, pos, 0  # the whole dataset, no stop tag in it
        tag, vr, length, pos = _element(buf, pos, implicit)
        name = vr.decode() if vr is not None else None
        if tag >= stop_at and tag >> 16 != 0xFFFE:
            return tag, name, pos, length
        if tag >> 16 == 0xFFFE or tag < (0x0008 << 16):
            raise _Unusual  # delimiters or meta/command groups out of place
        if length == UNDEFINED_LENGTH:
            if vr not in (None, b"SQ", b"UN"):
                raise _Unusual
            pos = _skip_sequence(buf, pos, implicit or vr == b"UN")
            elements[tag] = (name, None)  # present; only pydicom reads sequences
            continue
        if pos + length > len(buf):
            raise _Unusual
        elements[tag] = (name, None if vr == b"SQ" else buf[pos:pos + length])
        pos += length


def read_raw_header(path: Path, *, stop_at: int = PIXEL_DATA) -> RawHeader | None:
    """The top-level raw elements of `path` before `stop_at`, or None (pydicom's file)."""
    try:
        with open(path, "rb") as fh:
            buf = fh.read(_FIRST_READ)
            if len(buf) < 144 or buf[128:132] != b"DICM":
                return None
            try:
                return _parse(buf, stop_at, whole=len(buf) < _FIRST_READ)
            except _Unusual:
                pass
            buf += fh.read(_MAX_HEADER - len(buf))  # a long header (private blocks...)
            whole = len(buf) < _MAX_HEADER
        return _parse(buf, stop_at, whole=whole)
    except (OSError, _Unusual, struct.error, UnicodeDecodeError):
        return None


def _parse(buf: bytes, stop_at: int, *, whole: bool) -> RawHeader:
    pos = 132
    transfer_syntax = None
    while True:  # file meta information: explicit VR little endian, group 0002
        if pos + 8 > len(buf) or buf[pos:pos + 2] != b"\x02\x00":
            break
        tag, _vr, length, value = _element(buf, pos, False)
        if length == UNDEFINED_LENGTH or value + length > len(buf):
            raise _Unusual
        if tag == 0x00020010:
            transfer_syntax = buf[value:value + length].decode("ascii").rstrip("\0 ")
        pos = value + length
    if not transfer_syntax or transfer_syntax in _NOT_LITTLE_ENDIAN:
        raise _Unusual
    elements: dict[int, tuple[str | None, bytes | None]] = {}
    implicit = transfer_syntax == IMPLICIT_VR_LE
    stop_tag, stop_vr, offset, length = _walk(buf, pos, implicit, stop_at, whole, elements)
    return RawHeader(elements, implicit, transfer_syntax, stop_tag, stop_vr, offset, length)
