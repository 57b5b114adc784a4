"""Synthetic CT/MR studies with recognisable anatomy, for tests, demos and benchmarks.

`write_phantom_study` writes one study as single-frame CT (or MR) Image Storage files: a
body outline with subcutaneous fat, lungs at the top, liver, spleen, kidneys, spine and
aorta, the portal vein; contrast phases enhance the aorta (arterial) and the liver and
portal vein (portal venous). Organs are ellipsoids, so the per-slice work is a comparison
of precomputed normalised-radius maps: 600 slices of 512² take a few seconds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage

from radraft.core.uids import derived_uid
from radraft.reporting.phantom_anatomy import (
    HU,
    MR_SIGNAL,
    CtVariant,
    organs_for,
    paint_slice,
    radius_maps,
    variant_hu,
)

CT_PHASES = ("non-contrast", "arterial", "portal venous")
MR_SEQUENCES = ("T1", "T2", "FLAIR")
_ROOT = "2.25"
_PHASE_SECONDS = {"non-contrast": 0, "arterial": 35, "portal venous": 70, "delayed": 300}
_DESCRIPTIONS = {
    "non-contrast": "ABDOMEN NATIV 5mm",
    "arterial": "ABDOMEN ARTERIAL 1.25mm",
    "portal venous": "ABDOMEN PORTAL VENOUS 1.25mm",
    "delayed": "ABDOMEN DELAYED 5mm",
}


@dataclass(frozen=True, slots=True)
class PhantomSeries:
    series_uid: str
    label: str  # phase ("arterial") or MR sequence ("T2")
    description: str
    paths: tuple[Path, ...]
    sop_uids: tuple[str, ...]
    # Slice position along the patient z axis (mm) of each path, same order.
    positions: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class PhantomStudy:
    study_uid: str
    patient_id: str
    accession: str
    study_date: str
    modality: str
    directory: Path
    series: tuple[PhantomSeries, ...] = field(default_factory=tuple)

    @property
    def series_uids(self) -> tuple[str, ...]:
        return tuple(s.series_uid for s in self.series)

    @property
    def paths(self) -> tuple[Path, ...]:
        return tuple(p for s in self.series for p in s.paths)



def _base_dataset(
    modality: str, study_uid: str, patient_id: str, accession: str, study_date: str,
    patient_sex: str, patient_age: str,
) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = CTImageStorage if modality == "CT" else MRImageStorage
    ds.StudyDate = study_date
    ds.SeriesDate = study_date
    ds.AcquisitionDate = study_date
    ds.ContentDate = study_date
    ds.StudyTime = "101500"
    ds.AccessionNumber = accession
    ds.Modality = modality
    ds.Manufacturer = "RADRAFT PHANTOM"
    ds.ManufacturerModelName = "Ellipsoid 1"
    ds.InstitutionName = "Phantom Hospital"
    ds.ReferringPhysicianName = "REFERRER^PHANTOM"
    ds.StudyDescription = "CT ABDOMEN" if modality == "CT" else "MR ABDOMEN"
    ds.PatientName = f"PHANTOM^{patient_id}"
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = patient_sex
    ds.PatientAge = patient_age
    ds.BodyPartExamined = "ABDOMEN"
    ds.StudyInstanceUID = study_uid
    ds.StudyID = "1"
    ds.FrameOfReferenceUID = derived_uid(_ROOT, "phantom-for", study_uid)
    ds.PositionReferenceIndicator = ""
    ds.PatientPosition = "FFS"
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.BurnedInAnnotation = "NO"
    if modality == "CT":
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.PixelRepresentation = 1
        ds.RescaleIntercept = -1024
        ds.RescaleSlope = 1
        ds.RescaleType = "HU"
        ds.KVP = 120
        ds.ConvolutionKernel = "STANDARD"
        ds.WindowCenter = 40
        ds.WindowWidth = 400
    else:
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
        ds.PixelRepresentation = 0
        ds.MagneticFieldStrength = 1.5
        ds.ScanningSequence = "SE"
        ds.SequenceVariant = "NONE"
        ds.MRAcquisitionType = "2D"
        ds.ScanOptions = ""
        ds.EchoTrainLength = 1
    return ds


def _mr_parameters(ds: Dataset, sequence: str) -> None:
    params = {"T1": (500, 12, None), "T2": (4000, 100, None), "FLAIR": (9000, 120, 2500)}
    tr, te, ti = params.get(sequence, (500, 12, None))
    ds.RepetitionTime = tr
    ds.EchoTime = te
    if ti is not None:
        ds.InversionTime = ti
        ds.ScanningSequence = "IR"


def write_phantom_study(
    out_dir: Path,
    *,
    modality: str = "CT",
    phases: Sequence[str] | None = None,
    slices: int = 40,
    size: int = 128,
    study_uid: str | None = None,
    patient_id: str = "PHANTOM001",
    accession: str = "ACC-PHANTOM-1",
    study_date: str = "20261120",
    seed: int = 0,
    prior_of: PhantomStudy | None = None,
    slice_thickness: float = 2.5,
    include_localizer: bool = False,
    variant: CtVariant | None = None,
) -> PhantomStudy:
    """Write one synthetic study under `out_dir/<study_uid>/<series>/NNNN.dcm`.

    `phases` are CT contrast phases (default non-contrast, arterial, portal venous) or MR
    sequences ("T1", "T2", "FLAIR"). `variant` (CT) adds hard cases and header choices.
    `prior_of` makes this study an earlier exam of the
    same patient (a year before unless `study_date` is given explicitly).
    """
    if modality not in ("CT", "MR"):
        raise ValueError(f"phantom modality must be CT or MR, not {modality!r}")
    labels = tuple(phases) if phases is not None else (
        CT_PHASES if modality == "CT" else MR_SEQUENCES)
    if prior_of is not None:
        patient_id = prior_of.patient_id
        if study_date == "20261120":
            earlier = dt.datetime.strptime(prior_of.study_date, "%Y%m%d") - dt.timedelta(days=365)
            study_date = earlier.strftime("%Y%m%d")
        if accession == "ACC-PHANTOM-1":
            accession = prior_of.accession + "-P"
    study_uid = study_uid or derived_uid(
        _ROOT, "phantom", modality, patient_id, accession, study_date, str(seed))
    rng = np.random.default_rng(seed)
    pixel_mm = 380.0 / size
    organs = organs_for(variant)
    maps = radius_maps(size, pixel_mm, organs)
    noise = [rng.normal(0, 8 if modality == "CT" else 15, (size, size)).astype(np.int16)
             for _ in range(4)]
    base = _base_dataset(modality, study_uid, patient_id, accession, study_date, "F", "061Y")
    base.PixelSpacing = [round(pixel_mm, 6), round(pixel_mm, 6)]
    base.Rows = size
    base.Columns = size
    base.SliceThickness = slice_thickness
    base.SpacingBetweenSlices = slice_thickness
    study_dir = Path(out_dir) / study_uid
    series_out: list[PhantomSeries] = []
    pixels = np.empty((size, size), dtype=np.int16)
    z_top = 0.0
    for number, label in enumerate(labels, start=1):
        series_uid = derived_uid(_ROOT, "phantom-series", study_uid, label, str(number))
        ds = base.copy()
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = number + (1 if include_localizer else 0)
        ds.AcquisitionNumber = number
        ds.SeriesDescription = _DESCRIPTIONS.get(label, label) if modality == "CT" else label
        ds.ProtocolName = ds.SeriesDescription
        if modality == "CT":
            if label not in _PHASE_SECONDS:
                raise ValueError(f"unknown CT phase {label!r}; known: {sorted(_PHASE_SECONDS)}")
            phase_index = list(_PHASE_SECONDS).index(label)
            values = variant_hu({k: v[phase_index] for k, v in HU.items()}, variant)
            stored = {k: v + 1024 for k, v in values.items()}
            background = -1000 + 1024
            seconds = 10 * 3600 + 20 * 60 + _PHASE_SECONDS[label]
            _contrast_header(ds, label, variant, seconds)
        else:
            seq_index = list(MR_SEQUENCES).index(label) if label in MR_SEQUENCES else 0
            stored = {k: v[seq_index] for k, v in MR_SIGNAL.items()}
            background = 0
            _mr_parameters(ds, label)
            seconds = 10 * 3600 + 20 * 60 + 240 * number
        acq_time = f"{seconds // 3600:02d}{seconds // 60 % 60:02d}{seconds % 60:02d}"
        ds.SeriesTime = acq_time
        ds.AcquisitionTime = acq_time
        ds.ContentTime = acq_time
        series_dir = study_dir / f"{number:03d}"
        series_dir.mkdir(parents=True, exist_ok=True)
        paths, sops, positions = [], [], []
        for i in range(slices):
            frac = i / max(slices - 1, 1)
            z = z_top - i * slice_thickness
            paint_slice(pixels, maps, frac, stored, background, organs)
            np.add(pixels, noise[(i + number) % 4], out=pixels)
            if modality == "MR":
                np.maximum(pixels, 0, out=pixels)
            sop = derived_uid(_ROOT, "phantom-sop", series_uid, str(i))
            ds.SOPInstanceUID = sop
            ds.InstanceNumber = i + 1
            ds.ImagePositionPatient = [
                round(-(size - 1) / 2 * pixel_mm, 4), round(-(size - 1) / 2 * pixel_mm, 4), z]
            ds.SliceLocation = z
            ds.PixelData = pixels.tobytes()
            path = series_dir / f"{i:04d}.dcm"
            _write(ds, path)
            paths.append(path)
            sops.append(sop)
            positions.append(z)
        series_out.append(PhantomSeries(
            series_uid, label, str(ds.SeriesDescription), tuple(paths), tuple(sops),
            tuple(positions)))
    if include_localizer:
        series_out.insert(0, _write_localizer(base, study_dir, size, slices, slice_thickness))
    return PhantomStudy(study_uid, patient_id, accession, study_date, modality, study_dir,
                        tuple(series_out))


def _clock(seconds: float) -> str:
    whole = int(seconds) % 86400
    return f"{whole // 3600:02d}{whole // 60 % 60:02d}{whole % 60:02d}"


def _contrast_header(ds: Dataset, label: str, variant: CtVariant | None,
                     seconds: int) -> None:
    if variant is not None and variant.description is not None:
        ds.SeriesDescription = variant.description
        ds.ProtocolName = variant.description
    if variant is None or variant.contrast_agent is None:
        if label != "non-contrast":
            ds.ContrastBolusAgent = "IOMEPROL 350"
            ds.ContrastBolusRoute = "IV"
        return
    if variant.contrast_agent:
        ds.ContrastBolusAgent = variant.contrast_agent
        ds.ContrastBolusRoute = variant.route
        if variant.bolus_start_s is not None:
            ds.ContrastBolusStartTime = _clock(seconds - variant.bolus_start_s)


def _write_localizer(
    base: Dataset, study_dir: Path, size: int, slices: int, thickness: float,
) -> PhantomSeries:
    """A coronal scout (ImageType LOCALIZER) that frame assembly must skip."""
    series_uid = derived_uid(_ROOT, "phantom-scout", str(base.StudyInstanceUID))
    ds = base.copy()
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = 1
    ds.AcquisitionNumber = 1
    ds.SeriesDescription = "Topogram 0.6"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
    ds.ImagePositionPatient = [-190.0, 0.0, 0.0]
    sop = derived_uid(_ROOT, "phantom-scout-sop", series_uid)
    ds.SOPInstanceUID = sop
    ds.InstanceNumber = 1
    ds.SliceThickness = thickness
    column = np.linspace(0, 2000, size, dtype=np.float32)
    body = np.abs(np.linspace(-1, 1, size, dtype=np.float32)) < 0.8
    image = np.where(body[None, :], column[:, None], 0).astype(np.int16)
    ds.PixelData = image.tobytes()
    series_dir = study_dir / "000"
    series_dir.mkdir(parents=True, exist_ok=True)
    path = series_dir / "scout.dcm"
    _write(ds, path)
    del slices
    return PhantomSeries(series_uid, "localizer", "Topogram 0.6", (path,), (sop,), (0.0,))


def _write(ds: Dataset, path: Path) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.save_as(path, enforce_file_format=True)
