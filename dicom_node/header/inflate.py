"""Deflated datasets read with a bound on what they inflate to.

pydicom inflates a Deflated Explicit VR Little Endian dataset whole, in memory: a peer's
1 MB can become gigabytes (zlib reaches about 1000:1). Here the deflated stream is inflated
piece by piece, counting, keeping only the first `KEEP` bytes (the header attributes the
node indexes come first); past `max_bytes`, or past `max_ratio` times the deflated size
once larger than `RATIO_FLOOR`, the dataset is refused 0xA700 (the node will not commit
that much to one dataset; raising the limit lets a re-send through). Since the node stores
only datasets that passed, later readers of stored files (frames, the study page) inflate
at most `max_bytes`.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filereader import read_dataset, read_file_meta_info

from radraft.dicom_node.errors import CannotUnderstand, InflateLimit

DEFLATED = frozenset({
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.4.95",  # JPIP Referenced Deflate
})
KEEP = 4 << 20  # inflated bytes kept for reading the header
RATIO_FLOOR = 16 << 20  # below this inflated size any ratio is fine (blank images deflate ~1000:1)
_CHUNK = 64 << 10
_GROUP_LENGTH = struct.Struct("<HH2sHI")  # (0002,0000) UL, explicit VR little endian


@dataclass(frozen=True, slots=True)
class InflateLimits:
    max_bytes: int
    max_ratio: float


def dataset_offset(path: Path) -> int:
    """Where the dataset starts: after the preamble, 'DICM' and the File Meta group."""
    with path.open("rb") as handle:
        head = handle.read(132 + _GROUP_LENGTH.size)
    if len(head) < 132 + _GROUP_LENGTH.size or head[128:132] != b"DICM":
        raise CannotUnderstand("deflated dataset without a DICOM preamble")
    group, element, vr, _length, value = _GROUP_LENGTH.unpack_from(head, 132)
    value = int(value)
    if (group, element, vr) != (0x0002, 0x0000, b"UL"):
        raise CannotUnderstand("deflated dataset without a File Meta group length")
    return 132 + _GROUP_LENGTH.size + value


def inflate_bounded(path: Path, offset: int, limits: InflateLimits,
                    *, whole: bool = True) -> tuple[bytes, int]:
    """(the first KEEP inflated bytes, the inflated size); InflateLimit past a limit.
    With `whole` False it stops after KEEP bytes (a reader that wants the header only)."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    kept = bytearray()
    total = deflated = 0
    with path.open("rb") as handle:
        handle.seek(offset)
        while chunk := handle.read(_CHUNK):
            deflated += len(chunk)
            data = chunk
            while data:
                out = inflater.decompress(data, _CHUNK)
                total += len(out)
                if len(kept) < KEEP:
                    kept += out[:KEEP - len(kept)]
                _check(total, offset + deflated, limits)
                data = inflater.unconsumed_tail
                if inflater.eof or (not whole and len(kept) >= KEEP):
                    return bytes(kept), total
    total += len(inflater.flush())
    _check(total, offset + deflated, limits)
    return bytes(kept), total


def _check(total: int, deflated: int, limits: InflateLimits) -> None:
    if total > limits.max_bytes:
        raise InflateLimit(f"deflated dataset inflates past {limits.max_bytes} bytes "
                           "(dicom.max_inflated_bytes)")
    if total > RATIO_FLOOR and total > limits.max_ratio * deflated:
        raise InflateLimit(f"deflated dataset inflates more than {limits.max_ratio:g}:1 "
                           "(dicom.max_inflate_ratio)")


def read_deflated_header(path: Path, limits: InflateLimits, stop_tag: int,
                         tags: list[int], *, whole: bool = True) -> Dataset:
    """The attributes `tags` (read up to `stop_tag`) of a deflated file, inflating within
    `limits` (all of it when `whole`, to check the limits; else only the first KEEP bytes);
    its File Meta as `file_meta`."""
    meta: FileMetaDataset = read_file_meta_info(path)
    kept, total = inflate_bounded(path, dataset_offset(path), limits, whole=whole)
    ds = read_dataset(BytesIO(kept), is_implicit_VR=False, is_little_endian=True,
                      stop_when=lambda tag, _vr, _length: int(tag) >= stop_tag,
                      specific_tags=list(tags))
    if total > len(kept) and not ds:
        raise CannotUnderstand(f"no header in the first {KEEP} inflated bytes")
    ds.file_meta = meta
    return ds
