"""Header-only scanning of a study and pixel reads straight into caller buffers.

Native little-endian files are read by `core.dicom_scan` (top-level raw elements and the Pixel
Data offset; the pydicom header is parsed only when something asks for it), every other
file by pydicom with Pixel Data deferred (its file offset kept). Uncompressed little
endian pixels are then read with one `readinto` into the caller's array. Compressed,
big endian and deflated data go through pydicom's decoders, one frame at a time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels.utils import pixel_array as decode_pixel_array
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from radraft.core.dicom_scan import UNDEFINED_LENGTH, RawHeader, read_raw_header
from radraft.core.errors import FrameError
from radraft.reporting.frames.headers import HeaderValues, tag_of

PIXEL_DATA = 0x7FE00010
_NATIVE_LE = {ImplicitVRLittleEndian, ExplicitVRLittleEndian}
_SCAN_PROGRESS_EVERY = 500


@dataclass(slots=True)
class Instance:
    """One DICOM object: its header (no pixels) and where its pixels are."""

    source: str  # file path, or "<dataset N>" for in-memory input
    _header: Dataset | None  # None: parsed from `path` when first asked for
    path: Path | None
    transfer_syntax: UID
    pixel_offset: int | None  # file offset of native pixel data; None: decode via pydicom
    pixel_length: int
    values: HeaderValues | None = None  # the scan's memo of converted header values
    raw: RawHeader | None = None  # top-level raw elements (dicom_scan), when read that way
    # Image attributes read on every slice of every frame, converted once per instance.
    _image: dict[str, Any] = field(default_factory=dict, init=False, repr=False,
                                   compare=False)

    @property
    def header(self) -> Dataset:
        """The pydicom header (Pixel Data deferred), parsed on first use for fast scans."""
        if self._header is None:
            assert self.path is not None
            self._header = _read_dataset(self.path)
        return self._header

    def get(self, keyword: str, default: Any = None) -> Any:
        """`header.get`, through the scan's memo when there is one."""
        if self.values is None:
            return self.header.get(keyword, default)
        return self.values.get(self, keyword, default)

    def has(self, keyword: str) -> bool:
        """Whether the (top-level) element is present."""
        if self.raw is not None:
            return tag_of(keyword) in self.raw.elements
        return keyword in self.header

    def _int(self, keyword: str, default: int) -> int:
        try:
            value: int = self._image[keyword]
        except KeyError:
            value = self._image[keyword] = int(self.get(keyword, default) or default)
        return value

    @property
    def sop_uid(self) -> str:
        if self.values is not None:
            return self.values.uid(self, "SOPInstanceUID")
        return str(self.header.get("SOPInstanceUID", ""))

    @property
    def sop_class(self) -> str:
        return str(self.get("SOPClassUID", ""))

    @property
    def has_pixels(self) -> bool:
        return self.pixel_length > 0 or "PixelData" in self.header

    @property
    def rows(self) -> int:
        return self._int("Rows", 0)

    @property
    def columns(self) -> int:
        return self._int("Columns", 0)

    @property
    def samples(self) -> int:
        return self._int("SamplesPerPixel", 1)

    @property
    def frame_count(self) -> int:
        raw = self.get("NumberOfFrames", 1)
        try:
            return max(int(raw or 1), 1)
        except (TypeError, ValueError):
            raise FrameError(f"{self.source}: Number of Frames {raw!r} is not a number") from None

    @property
    def stored_dtype(self) -> np.dtype[Any]:
        bits = self._int("BitsAllocated", 16)
        signed = self._int("PixelRepresentation", 0) == 1
        if bits not in (8, 16, 32):
            raise FrameError(f"{self.source}: Bits Allocated {bits} is not supported")
        return np.dtype(f"{'i' if signed else 'u'}{bits // 8}")


def _transfer_syntax(ds: Dataset) -> UID:
    meta = getattr(ds, "file_meta", None)
    ts = meta.get("TransferSyntaxUID") if meta is not None else None
    if ts:
        return UID(str(ts))
    # No meta: pydicom guessed the encoding while parsing; native data follows it.
    implicit, little = ds.original_encoding
    if implicit and little:
        return ImplicitVRLittleEndian
    if little:
        return ExplicitVRLittleEndian
    return UID("1.2.840.10008.1.2.2")


def _read_dataset(path: Path) -> Dataset:
    try:
        return pydicom.dcmread(path, defer_size=256)
    except (InvalidDicomError, OSError, ValueError, EOFError, KeyError, TypeError) as exc:
        raise FrameError(f"{path}: unreadable DICOM header: {exc}") from exc


def native_raw_header(path: Path) -> RawHeader | None:
    """The raw scan of a native little-endian file with its Pixel Data, or None.

    Only such files have pixels that can be read straight from their offset; every other
    one (compressed, big endian, deflated, no Pixel Data in the first 256 KiB) is pydicom's.
    """
    raw = read_raw_header(path)
    if (raw is None or raw.transfer_syntax not in _NATIVE_LE or raw.stop_tag != PIXEL_DATA
            or raw.value_length in (0, UNDEFINED_LENGTH) or raw.stop_vr not in (None, "OB", "OW")):
        return None
    return raw


def read_header(path: Path, values: HeaderValues | None = None) -> Instance | None:
    """Parse one file's header; None when the file is not DICOM at all.

    Native little-endian files are read by `core.dicom_scan` (top-level raw elements; the pydicom
    header is parsed only when asked for); every other file by pydicom at once.
    """
    raw = native_raw_header(path)
    if raw is not None:
        return Instance(str(path), None, path, UID(raw.transfer_syntax), raw.value_offset,
                        raw.value_length, values, raw)
    try:
        ds = pydicom.dcmread(path, defer_size=256)
    except InvalidDicomError:
        return None
    except (OSError, ValueError, EOFError, KeyError, TypeError) as exc:
        raise FrameError(f"{path}: unreadable DICOM header: {exc}") from exc
    ts = _transfer_syntax(ds)
    element = ds.get_item(PIXEL_DATA, keep_deferred=True)
    offset: int | None = None
    length = 0
    if element is not None:
        length = int(getattr(element, "length", 0) or 0)
        tell = getattr(element, "value_tell", None)
        native = ts in _NATIVE_LE and length != 0xFFFFFFFF
        if native and tell is not None and getattr(element, "value", None) is None:
            offset = int(tell)
        if length == 0xFFFFFFFF:
            length = 1  # encapsulated: present, length unknown until decoded
    return Instance(str(path), ds, path, ts, offset, length, values)


def from_dataset(ds: Dataset, index: int) -> Instance:
    length = len(ds.PixelData) if "PixelData" in ds else 0
    return Instance(f"<dataset {index}>", ds, None, _transfer_syntax(ds), None, length)


def iter_files(root: Path) -> Iterable[Path]:
    """Every regular file under `root` (any nesting, any name), in a stable order."""
    if root.is_file():
        yield root
        return
    if not root.is_dir():
        raise FrameError(f"{root}: no such study folder")
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            yield Path(dirpath) / name


def scan(
    source: Path | Sequence[Dataset], progress: Callable[[str], None] | None = None,
    values: HeaderValues | None = None,
) -> tuple[list[Instance], list[str]]:
    """Headers of every object in a study folder or dataset list, and non-DICOM files."""
    if isinstance(source, (str, Path)):
        instances: list[Instance] = []
        not_dicom: list[str] = []
        for count, path in enumerate(iter_files(Path(source)), start=1):
            if progress is not None and count % _SCAN_PROGRESS_EVERY == 0:
                progress(f"{count} files read")
            inst = read_header(path, values)
            if inst is None:
                not_dicom.append(str(path))
            else:
                instances.append(inst)
        return instances, not_dicom
    return [from_dataset(ds, i) for i, ds in enumerate(source)], []


def read_frame_into(inst: Instance, frame: int, out: npt.NDArray[Any]) -> None:
    """Stored values of frame `frame` (0-based) into `out` (rows × cols [× samples])."""
    if inst.pixel_offset is not None and inst.path is not None and inst.samples == 1:
        itemsize = inst.stored_dtype.itemsize
        frame_bytes = inst.rows * inst.columns * itemsize
        if out.dtype != inst.stored_dtype or not out.flags.c_contiguous:
            raise FrameError(f"{inst.source}: internal buffer mismatch for frame {frame + 1}")
        with open(inst.path, "rb") as fh:
            fh.seek(inst.pixel_offset + frame * frame_bytes)
            got = fh.readinto(out.data.cast("B"))
        if got != frame_bytes:
            raise FrameError(
                f"{inst.source}: Pixel Data ends after {got} of {frame_bytes} bytes of frame "
                f"{frame + 1} (truncated file)")
        return
    np.copyto(out, decode_frame(inst, frame), casting="unsafe")


def decode_frame(inst: Instance, frame: int) -> npt.NDArray[Any]:
    """One frame decoded by pydicom (any transfer syntax; colour converted to RGB)."""
    src: Any = inst.path if inst.path is not None else inst.header
    try:
        if inst.path is not None and inst.frame_count > 1 and inst.transfer_syntax != (
                DeflatedExplicitVRLittleEndian):
            # Only this frame is decoded; the rest of the file stays on disk.
            arr = decode_pixel_array(src, index=frame)
        elif inst.path is not None:
            arr = pydicom.dcmread(inst.path).pixel_array
            if inst.frame_count > 1:
                arr = arr[frame]
        else:
            arr = inst.header.pixel_array
            if inst.frame_count > 1:
                arr = arr[frame]
    except (ValueError, RuntimeError, NotImplementedError, AttributeError, KeyError,
            OSError, EOFError, TypeError) as exc:
        raise FrameError(f"{inst.source}: pixel data cannot be decoded "
                         f"({inst.transfer_syntax.name}): {exc}") from exc
    return np.asarray(arr)
