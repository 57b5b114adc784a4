"""Odd objects real archives hold, generated for tests: a legacy multi-frame MR without
per-frame positions, and a slice whose geometry cannot be read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage

from radraft.core.uids import derived_uid

_ROOT = "2.25"


def _mr_base(study_uid: str, series_uid: str, number: int, description: str,
             size: int) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = MRImageStorage
    ds.Modality = "MR"
    ds.Manufacturer = "RADRAFT PHANTOM"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = number
    ds.SeriesDescription = description
    ds.StudyDate = "20261120"
    ds.StudyTime = "101500"
    ds.PatientID = "PHANTOM-MF"
    ds.PatientName = "PHANTOM^MF"
    ds.AccessionNumber = "ACC-MF"
    ds.BodyPartExamined = "BRAIN"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = size
    ds.Columns = size
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelSpacing = [1.0, 1.0]
    ds.RepetitionTime = 500
    ds.EchoTime = 12
    return ds


def disc_frame(size: int, frame: int) -> np.ndarray:
    """Frame `frame` (1-based): a bright disc whose radius grows with the frame number."""
    y, x = np.mgrid[0:size, 0:size]
    radius = size * (0.08 + 0.05 * frame)
    image = np.full((size, size), 100, dtype=np.uint16)
    image[(x - size / 2) ** 2 + (y - size / 2) ** 2 <= radius ** 2] = 1000
    return image


def write_legacy_multiframe_mr(out_dir: Path, *, frames: int = 6, size: int = 64,
                               with_axial_series: bool = True) -> dict[str, Path]:
    """A study with one legacy MR Image Storage object of `frames` frames and no Image
    Position/Orientation at all (as some archives hold), and an ordinary axial T2 series.

    Frame k shows a disc of radius growing with k, so the frame order can be checked.
    """
    study_uid = derived_uid(_ROOT, "phantom-legacy-mf", str(out_dir))
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    series_uid = derived_uid(_ROOT, "phantom-legacy-mf-series", study_uid)
    ds = _mr_base(study_uid, series_uid, 5, "cine legacy", size)
    ds.SOPInstanceUID = derived_uid(_ROOT, "phantom-legacy-mf-sop", series_uid)
    ds.InstanceNumber = 1
    ds.NumberOfFrames = frames
    ds.PixelData = b"".join(disc_frame(size, k + 1).tobytes() for k in range(frames))
    written["legacy"] = _write(ds, out_dir / "legacy_mf.dcm")
    if with_axial_series:
        axial_uid = derived_uid(_ROOT, "phantom-legacy-axial", study_uid)
        for i in range(4):
            sl = _mr_base(study_uid, axial_uid, 3, "t2_tse_tra", size)
            sl.RepetitionTime = 4000
            sl.EchoTime = 100
            sl.SOPInstanceUID = derived_uid(_ROOT, "phantom-legacy-axial-sop", axial_uid,
                                            str(i))
            sl.InstanceNumber = i + 1
            sl.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
            sl.ImagePositionPatient = [-32, -32, 20.0 - 5 * i]
            sl.PixelData = disc_frame(size, i + 1).tobytes()
            written[f"axial_{i}"] = _write(sl, out_dir / f"axial_{i}.dcm")
    bad_uid = derived_uid(_ROOT, "phantom-legacy-bad", study_uid)
    bad = _mr_base(study_uid, bad_uid, 7, "broken geometry", size)
    bad.SOPInstanceUID = derived_uid(_ROOT, "phantom-legacy-bad-sop", bad_uid)
    bad.InstanceNumber = 1
    bad.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    bad.ImagePositionPatient = [0, 0]  # two values: cannot be placed
    bad.PixelData = disc_frame(size, 1).tobytes()
    written["bad"] = _write(bad, out_dir / "bad_geometry.dcm")
    return written


def _write(ds: Dataset, path: Path) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.save_as(path, enforce_file_format=True)
    return path
