"""The raw header scan (core.dicom_scan, as frame loading uses it) reads the same
top-level raw elements and Pixel Data position as pydicom, and hands every file it is
not sure about back to pydicom."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from helpers.data import DICOM_DATA
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from radraft.reporting.frames.headers import HeaderValues
from radraft.reporting.frames.loading import native_raw_header as read_raw_header
from radraft.reporting.frames.loading import read_frame_into, read_header
from radraft.reporting.phantom import write_phantom_study

_PIXEL_DATA = 0x7FE00010
_FILES = sorted(p for p in DICOM_DATA.rglob("*") if p.is_file() and p.suffix != ".md")


def _native_by_pydicom(path: Path) -> bool:
    """What pydicom says about the file: native little endian with top-level Pixel Data of
    a defined length (the only files the fast path may take)."""
    try:
        ds = pydicom.dcmread(path, defer_size=None)
    except InvalidDicomError:
        return False
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    pixel = ds.get_item(_PIXEL_DATA)
    return (syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian) and pixel is not None
            and pixel.length not in (0, 0xFFFFFFFF))


def _same_as_pydicom(path: Path) -> None:
    raw = read_raw_header(path)
    # The fast path takes exactly the files pydicom calls native (a decline elsewhere would
    # hide a scanner bug; a take of a compressed file would read pixels wrongly).
    assert (raw is not None) == _native_by_pydicom(path), path
    if raw is None:
        return  # pydicom's file, and pydicom agrees
    ds = pydicom.dcmread(path, defer_size=None)
    assert raw.transfer_syntax == ds.file_meta.TransferSyntaxUID
    pixel = ds.get_item(_PIXEL_DATA)
    assert isinstance(pixel, RawDataElement)
    assert (raw.value_offset, raw.value_length) == (pixel.value_tell, pixel.length)
    tags = {int(t) for t in list(ds.keys()) if int(t) < _PIXEL_DATA}
    assert set(raw.elements) == tags, path
    for tag, (vr, value) in raw.elements.items():
        elem = ds.get_item(tag)
        if not isinstance(elem, RawDataElement):
            continue  # converted while reading (Specific Character Set)
        assert vr == elem.VR, (path, hex(tag))
        if vr != "SQ" and value is not None:
            assert value == elem.value, (path, hex(tag))


@pytest.mark.parametrize("path", _FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_sample_files_read_like_pydicom(path: Path) -> None:
    _same_as_pydicom(path)


def test_phantom_files_take_the_fast_path(tmp_path: Path) -> None:
    study = write_phantom_study(tmp_path / "ct", phases=["arterial"], slices=3, size=32)
    for path in sorted(study.directory.rglob("*.dcm")):
        assert read_raw_header(path) is not None
        _same_as_pydicom(path)


def _written(tmp_path: Path, name: str, ts: str, extra: int = 0,
             sequences: bool = False) -> Path:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ts
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "CT"
    ds.ImagePositionPatient = [1.5, -2, 30.25]
    if extra:
        ds.add_new(0x00091010, "UN", b"x" * extra)
    if sequences:
        inner = Dataset()
        inner.CodeValue = "123"
        inner.add_new(0x00400260, "SQ", Sequence([Dataset()]))
        ds.ProcedureCodeSequence = Sequence([inner, Dataset()])
    ds.Rows, ds.Columns, ds.BitsAllocated, ds.SamplesPerPixel = 4, 4, 16, 1
    ds.PixelRepresentation = 0
    ds.PixelData = np.arange(16, dtype=np.uint16).tobytes()
    path = tmp_path / name
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.parametrize("ts", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_sequences_long_headers_and_truncation(tmp_path: Path, ts: str) -> None:
    plain = _written(tmp_path, "plain.dcm", ts, sequences=True)
    _same_as_pydicom(plain)
    assert read_raw_header(plain) is not None
    long = _written(tmp_path, "long.dcm", ts, extra=40_000)  # beyond the first read
    _same_as_pydicom(long)
    assert read_raw_header(long) is not None
    inst = read_header(long, HeaderValues())
    assert inst is not None and inst.raw is not None
    out = np.empty((4, 4), dtype=np.uint16)
    read_frame_into(inst, 0, out)
    assert out.ravel().tolist() == list(range(16))
    assert inst.sop_uid == str(pydicom.dcmread(long).SOPInstanceUID)
    huge = _written(tmp_path, "huge.dcm", ts, extra=300_000)  # past the limit: pydicom's
    assert read_raw_header(huge) is None
    truncated = tmp_path / "truncated.dcm"
    truncated.write_bytes(plain.read_bytes()[:200])
    assert read_raw_header(truncated) is None


def test_values_equal_pydicom_get(tmp_path: Path) -> None:
    study = write_phantom_study(tmp_path / "ct", phases=["arterial"], slices=3, size=32)
    values = HeaderValues()
    for path in sorted(study.directory.rglob("*.dcm")):
        inst = read_header(path, values)
        assert inst is not None
        ds = pydicom.dcmread(path)
        for key in ("Modality", "ImageType", "SeriesDescription", "RescaleSlope", "Rows",
                    "ImageOrientationPatient", "SeriesInstanceUID", "BurnedInAnnotation"):
            assert values.get(inst, key) == ds.get(key)
        assert values.numbers(inst, "ImagePositionPatient") == tuple(
            float(v) for v in ds.ImagePositionPatient)
        assert inst.sop_uid == ds.SOPInstanceUID


def test_samples_exercise_both_paths() -> None:
    """The sample comparison above is not vacuous: many samples take the fast path, and
    the compressed, big-endian, SR and broken ones are handed to pydicom."""
    taken = [p for p in _FILES if read_raw_header(p) is not None]
    assert len(taken) >= 40 and len(_FILES) - len(taken) >= 15
