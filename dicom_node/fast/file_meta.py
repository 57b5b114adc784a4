"""The File Meta Information of each received file, encoded directly (PS3.10 7.1).

In chunked-receive mode pynetdicom builds a pydicom FileMetaDataset for every C-STORE and
writes it with pydicom's validating writer (cost: README). The group it
writes always has the same seven elements (explicit VR little endian), so `fast.install()` makes
pynetdicom's receive path write the same bytes straight from the three UIDs; any other file
meta still goes to pydicom. A test compares the bytes with pydicom's.
"""

from __future__ import annotations

import struct
from typing import Any, NamedTuple

import pydicom.filewriter
from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION

_SHORT = struct.Struct("<HH2sH")  # group, element, VR, 2-byte length
_LONG = struct.Struct("<HH2s2xI")  # group, element, VR, reserved, 4-byte length
_UL = struct.Struct("<I")
_pydicom_write_file_meta_info = pydicom.filewriter.write_file_meta_info


class ReceivedFileMeta(NamedTuple):
    """What pynetdicom's create_file_meta would put in a FileMetaDataset."""

    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    implementation_uid: str
    implementation_version: str


def create_file_meta(
    *, sop_class_uid: Any, sop_instance_uid: Any, transfer_syntax: Any,
    implementation_uid: Any = PYNETDICOM_IMPLEMENTATION_UID,
    implementation_version: str = PYNETDICOM_IMPLEMENTATION_VERSION,
) -> ReceivedFileMeta:
    return ReceivedFileMeta(str(sop_class_uid), str(sop_instance_uid), str(transfer_syntax),
                            str(implementation_uid), implementation_version)


def _short(element: int, vr: bytes, value: bytes, pad: bytes) -> bytes:
    if len(value) % 2:
        value += pad
    return _SHORT.pack(0x0002, element, vr, len(value)) + value


def encode_file_meta(meta: ReceivedFileMeta) -> bytes:
    """Group 0002 with its group length, as pydicom's write_file_meta_info writes it."""
    body = b"".join((
        _LONG.pack(0x0002, 0x0001, b"OB", 2) + b"\x00\x01",
        _short(0x0002, b"UI", meta.sop_class_uid.encode("ascii"), b"\x00"),
        _short(0x0003, b"UI", meta.sop_instance_uid.encode("ascii"), b"\x00"),
        _short(0x0010, b"UI", meta.transfer_syntax.encode("ascii"), b"\x00"),
        _short(0x0012, b"UI", meta.implementation_uid.encode("ascii"), b"\x00"),
        _short(0x0013, b"SH", meta.implementation_version.encode("ascii"), b" "),
    ))
    return _SHORT.pack(0x0002, 0x0000, b"UL", 4) + _UL.pack(len(body)) + body


def write_file_meta_info(fp: Any, file_meta: Any, enforce_standard: bool = True) -> None:
    if isinstance(file_meta, ReceivedFileMeta):
        fp.write(encode_file_meta(file_meta))
    else:
        _pydicom_write_file_meta_info(fp, file_meta, enforce_standard)

