"""A strict reader of the top-level elements of a native little-endian DICOM file.

The header scan is the one serial step of frame assembly: pydicom's `dcmread` costs
0.35-0.6 ms a file here, most of it building objects the frames never look at. This
reader walks the element headers of the file's first bytes with `struct` and keeps each
top-level element's raw bytes (sequences are stepped over, not parsed); values are then
converted by pydicom, once per distinct raw value (`headers.HeaderValues`), and the full
pydicom header of an instance is parsed only when something asks for it. Anything
unusual — no preamble, a transfer syntax other than implicit/explicit VR little endian,
an unknown VR, lengths that do not fit, encapsulated or empty pixel data, Pixel Data not
found in the first 256 KiB — returns None, and the file goes to pydicom as before.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

_IMPLICIT = "1.2.840.10008.1.2"
_EXPLICIT = "1.2.840.10008.1.2.1"
_PIXEL_DATA = 0x7FE00010
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR",
             b"UT", b"UV"}
_VRS = _LONG_VRS | {b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS",
                    b"LO", b"LT", b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL",
                    b"US"}
_FIRST_READ = 16 << 10
_MAX_HEADER = 256 << 10
_UNDEFINED = 0xFFFFFFFF
_HEAD = struct.Struct("<HH2sH")  # group, element, VR, short length (explicit VR)
_TAG_LENGTH = struct.Struct("<HHI")  # group, element, length (implicit VR, items)
_U32 = struct.Struct("<I")


class _Unusual(Exception):
    """Not a file this reader handles: pydicom reads it."""


@dataclass(frozen=True, slots=True)
class RawHeader:
    """Top-level elements: tag → (VR as in the file (None: implicit), raw bytes).

    Sequences are present with None for their bytes: their items are pydicom's to read.
    """

    elements: dict[int, tuple[str | None, bytes | None]]
    implicit: bool
    transfer_syntax: str
    pixel_offset: int
    pixel_length: int


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
        if length != _UNDEFINED:
            pos += length
            continue
        while True:  # an undefined-length item: its elements up to the item delimiter
            tag, vr, length, pos = _element(buf, pos, implicit)
            if tag == _ITEM_END:
                break
            if length == _UNDEFINED:
                if vr not in (None, b"SQ", b"UN"):
                    raise _Unusual
                pos = _skip_sequence(buf, pos, implicit or vr == b"UN")
            else:
                pos += length


def _walk(buf: bytes, pos: int, implicit: bool,
          elements: dict[int, tuple[str | None, bytes | None]]) -> tuple[int, int]:
    """Top-level elements into `elements`; returns Pixel Data's (offset, length)."""
    while True:
        tag, vr, length, pos = _element(buf, pos, implicit)
        if tag == _PIXEL_DATA:
            if length in (0, _UNDEFINED) or vr not in (None, b"OB", b"OW"):
                raise _Unusual
            return pos, length
        if tag >> 16 == 0xFFFE or tag < (0x0008 << 16):
            raise _Unusual  # delimiters or meta/command groups out of place
        name = vr.decode() if vr is not None else None
        if length == _UNDEFINED:
            if vr not in (None, b"SQ", b"UN"):
                raise _Unusual
            pos = _skip_sequence(buf, pos, implicit or vr == b"UN")
            elements[tag] = (name, None)  # present; only pydicom reads sequences
            continue
        if pos + length > len(buf):
            raise _Unusual
        elements[tag] = (name, None if vr == b"SQ" else buf[pos:pos + length])
        pos += length


def read_raw_header(path: Path) -> RawHeader | None:
    """The top-level raw elements of `path`, or None (pydicom must read this file)."""
    try:
        with open(path, "rb") as fh:
            buf = fh.read(_FIRST_READ)
            if len(buf) < 144 or buf[128:132] != b"DICM":
                return None
            try:
                return _parse(buf)
            except _Unusual:
                pass
            buf += fh.read(_MAX_HEADER - len(buf))  # a long header (private blocks...)
        return _parse(buf)
    except (OSError, _Unusual, struct.error, UnicodeDecodeError):
        return None


def _parse(buf: bytes) -> RawHeader:
    pos = 132
    transfer_syntax = None
    while True:  # file meta information: explicit VR little endian, group 0002
        if pos + 8 > len(buf) or buf[pos:pos + 2] != b"\x02\x00":
            break
        tag, _vr, length, value = _element(buf, pos, False)
        if length == _UNDEFINED or value + length > len(buf):
            raise _Unusual
        if tag == 0x00020010:
            transfer_syntax = buf[value:value + length].decode("ascii").rstrip("\0 ")
        pos = value + length
    if transfer_syntax not in (_IMPLICIT, _EXPLICIT):
        raise _Unusual
    elements: dict[int, tuple[str | None, bytes | None]] = {}
    implicit = transfer_syntax == _IMPLICIT
    offset, length = _walk(buf, pos, implicit, elements)
    return RawHeader(elements, implicit, transfer_syntax, offset, length)
