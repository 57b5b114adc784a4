"""The node's fast header scan gives exactly what the pydicom path gives, on every sample
file and on the encodings a sample set lacks (character sets, junk IS, sequences)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pydicom
import pytest
from helpers.data import DICOM_DATA
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    generate_uid,
)

from radraft.core.dicom_scan import read_raw_header
from radraft.dicom_node.errors import (
    STATUS_CANNOT_UNDERSTAND,
    STATUS_IDENTITY_MISMATCH,
    InflateLimit,
    InvalidIdentifier,
    StoreRefused,
)
from radraft.dicom_node.header.fields import STOP_TAG, TAGS, DatasetFields, RawFields
from radraft.dicom_node.header.inflate import InflateLimits, dataset_offset, inflate_bounded
from radraft.dicom_node.header.reading import (
    DEFAULT_LIMITS,
    _fields_of,
    _header_of,
    read_attributes,
    read_header,
    read_stored_header,
)

_FILES = sorted(p for p in DICOM_DATA.rglob("*") if p.is_file() and p.suffix != ".md")


def _both(path: Path) -> tuple[object, object] | None:
    raw = read_raw_header(path, stop_at=STOP_TAG)
    if raw is None:
        return None
    slow = DatasetFields(pydicom.dcmread(path, stop_before_pixels=True, specific_tags=TAGS,
                                         force=True))
    return _header_of(RawFields(raw)), _header_of(slow)


@pytest.mark.parametrize("path", _FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_sample_files_read_like_pydicom(path: Path) -> None:
    """A file the fast scan reads, pydicom reads with the same values; a file it declines,
    the node's pydicom path reads or refuses with a C-STORE failure status (never another
    exception)."""
    pair = _both(path)
    if pair is not None:
        assert pair[0] == pair[1]
        return
    try:
        header = read_stored_header(path)
    except StoreRefused as exc:
        assert exc.status in (STATUS_CANNOT_UNDERSTAND, STATUS_IDENTITY_MISMATCH), exc
    else:
        assert header.sop_uid and header.study_uid


def test_most_samples_take_the_fast_path() -> None:
    fast = sum(read_raw_header(p, stop_at=STOP_TAG) is not None for p in _FILES)
    assert fast >= len(_FILES) * 0.6, f"only {fast} of {len(_FILES)} scanned fast"


def _written(tmp_path: Path, ts: str, **values: object) -> Path:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ts
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality = "CT"
    ref = Dataset()
    ref.ReferencedSOPInstanceUID = generate_uid()
    ds.ReferencedImageSequence = Sequence([ref])  # a sequence before group 0020 is stepped over
    for keyword, value in values.items():
        if isinstance(value, bytes):  # junk pydicom refuses to build: write the raw bytes
            tag = Tag(keyword)
            vr = dictionary_VR(tag)
            ds[tag] = RawDataElement(tag, vr, len(value), value, 0, ts == ImplicitVRLittleEndian,
                                     True)
        else:
            setattr(ds, keyword, value)
    path = tmp_path / f"{ds.SOPInstanceUID}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.parametrize("ts", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
@pytest.mark.parametrize("values", [
    {"SpecificCharacterSet": "ISO_IR 100", "InstitutionName": "Hôpital Saint-Éloi",
     "StudyDescription": "TÊTE SANS INJECTION", "PatientID": "ÄÖ123"},
    {"SpecificCharacterSet": "ISO_IR 192", "StudyDescription": "頭部 CT 造影",
     "InstitutionName": "Klinikum Düsseldorf"},
    {"SeriesNumber": "12.0", "InstanceNumber": "7 ", "PatientAge": "045Y"},
    {"SeriesNumber": "1.5", "InstanceNumber": b"junk", "PatientAge": "3M"},
    {"StudyDescription": "CT\\ABDOMEN ", "AccessionNumber": " A12 ",
     "PatientBirthDate": "19800229", "StudyDate": "20240228"},
])
def test_generated_files_read_like_pydicom(tmp_path: Path, ts: str,
                                           values: dict[str, object]) -> None:
    path = _written(tmp_path, ts, **values)
    pair = _both(path)
    assert pair is not None, "a plain little-endian file must take the fast path"
    assert pair[0] == pair[1]


def test_a_deflated_file_reads_like_pydicom_within_the_inflate_limits(tmp_path: Path) -> None:
    path = _written(tmp_path, DeflatedExplicitVRLittleEndian, PatientID="D1",
                    StudyDescription="DEFLATED", InstanceNumber="3")
    ours = _header_of(_fields_of(path, DEFAULT_LIMITS))
    theirs = _header_of(DatasetFields(pydicom.dcmread(path, force=True)))
    assert ours == theirs
    assert ours.patient_id == "D1" and ours.instance_number == 3
    with pytest.raises(InflateLimit):
        inflate_bounded(path, dataset_offset(path), InflateLimits(max_bytes=64, max_ratio=1e9))


@pytest.mark.parametrize(("field", "value"), [
    ("StudyInstanceUID", "1.2.3." + "4" * 60),  # 66 characters: never cut to 64
    ("SeriesInstanceUID", "1.2.3.x"),
    ("SeriesInstanceUID", "1.2..3"),
    ("PatientID", "P" * 65),
])
def test_invalid_identifiers_are_refused_not_altered(tmp_path: Path, field: str,
                                                     value: str) -> None:
    path = _written(tmp_path, ExplicitVRLittleEndian)
    ds = pydicom.dcmread(path)
    setattr(ds, field, value)
    ds.save_as(path)
    with pytest.raises(InvalidIdentifier) as refused:
        read_header(path, affected_class=str(ds.SOPClassUID),
                    affected_instance=str(ds.SOPInstanceUID))
    assert refused.value.status == STATUS_IDENTITY_MISMATCH


def test_display_reads_of_a_deflated_file_inflate_only_its_first_bytes(tmp_path: Path) -> None:
    """The study page's header read: a stored deflated file is not inflated whole."""
    path = _written(tmp_path, DeflatedExplicitVRLittleEndian, PatientID="D2", BitsAllocated=8,
                    PixelData=bytes(64 << 20))  # 64 MiB of zeros: ~64 KiB deflated
    assert path.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        ds = read_attributes(path, ["PatientID", "StudyInstanceUID"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert ds.PatientID == "D2"
    assert peak < 16 << 20, f"{peak} bytes to read two attributes"
