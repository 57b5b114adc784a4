"""The seed corpus: real public samples from tests/data (DICOM objects, HL7 messages) and the
regression seeds in tests/data/fuzz/ (byte streams that once found a defect)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
SEEDS = DATA / "fuzz"

DICOM_FILES = [
    "transfer_syntaxes/CT_small.dcm", "transfer_syntaxes/MR_small_implicit.dcm",
    "transfer_syntaxes/MR_small.dcm", "transfer_syntaxes/ExplVR_BigEnd.dcm",
    "transfer_syntaxes/image_dfl.dcm", "transfer_syntaxes/MR_small_RLE.dcm",
    "transfer_syntaxes/JPEG2000.dcm", "transfer_syntaxes/JPEGLSNearLossless_16.dcm",
    "transfer_syntaxes/SC_rgb_jpeg_dcmtk.dcm", "sr/sr_document.dcm",
    "sr/sr_document_with_multiple_groups.dcm", "broken/UN_sequence.dcm",
    "broken/reportsi_with_empty_number_tags.dcm", "broken/MR_small_padded.dcm",
]


@dataclass(frozen=True)
class DicomSample:
    name: str
    transfer_syntax: str
    sop_class: str
    sop_instance: str
    dataset: bytes  # the encoded data set (after the file meta group)

    @property
    def explicit(self) -> bool:
        return self.transfer_syntax != "1.2.840.10008.1.2"

    @property
    def little(self) -> bool:
        return self.transfer_syntax != "1.2.840.10008.1.2.2"


def _meta_value(meta: bytes, element: int) -> str:
    offset = 0
    while offset + 8 <= len(meta):
        group, elem = struct.unpack("<HH", meta[offset:offset + 4])
        vr = meta[offset + 4:offset + 6]
        if vr in (b"OB", b"OW", b"UN", b"SQ", b"UT", b"UC", b"UR"):
            length = struct.unpack("<I", meta[offset + 8:offset + 12])[0]
            start = offset + 12
        else:
            length = struct.unpack("<H", meta[offset + 6:offset + 8])[0]
            start = offset + 8
        if group == 0x0002 and elem == element:
            return meta[start:start + length].rstrip(b"\x00 ").decode("ascii", "replace")
        offset = start + length
    return ""


def dicom_samples() -> list[DicomSample]:
    samples = []
    for name in DICOM_FILES:
        raw = (DATA / "dicom" / name).read_bytes()
        if raw[128:132] != b"DICM" or raw[136:138] != b"UL":
            continue
        meta_length = struct.unpack("<I", raw[140:144])[0]
        meta = raw[144:144 + meta_length]
        ts, sop_class, sop_instance = (_meta_value(meta, 0x0010), _meta_value(meta, 0x0002),
                                       _meta_value(meta, 0x0003))
        if ts and sop_class and sop_instance:
            samples.append(DicomSample(name, ts, sop_class, sop_instance,
                                       raw[144 + meta_length:]))
    return samples


def hl7_samples() -> list[bytes]:
    messages = []
    for path in sorted((DATA / "hl7").glob("*.hl7")):
        text = path.read_bytes().replace(b"\r\n", b"\r").replace(b"\n", b"\r")
        messages.append(text if text.endswith(b"\r") else text + b"\r")
    return messages


def regression_seeds(kind: str) -> list[tuple[str, bytes]]:
    """(name, bytes to send as they are) from tests/data/fuzz/<kind>/."""
    folder = SEEDS / kind
    return [(p.name, p.read_bytes()) for p in sorted(folder.glob("*.bin"))] \
        if folder.is_dir() else []
