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
import numpy.typing as npt
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage

from radraft.core.uids import derived_uid

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
class _Organ:
    """An ellipsoid: centre (x, y) in mm from the image centre, radii in mm, z extent in
    fractions of the scanned range (0 = top slice)."""

    name: str
    cx: float
    cy: float
    rx: float
    ry: float
    z_from: float
    z_to: float


# Painted in this order: later organs overwrite earlier ones.
_ORGANS = (
    _Organ("body", 0, 10, 165, 120, -1.0, 2.0),
    _Organ("muscle", 0, 10, 150, 105, -1.0, 2.0),
    _Organ("lung_r", -70, -5, 60, 70, -0.3, 0.32),
    _Organ("lung_l", 70, -5, 60, 70, -0.3, 0.28),
    _Organ("liver", -55, -15, 85, 70, 0.18, 0.62),
    _Organ("spleen", 85, 20, 35, 45, 0.22, 0.5),
    _Organ("kidney_r", -60, 60, 28, 38, 0.45, 0.8),
    _Organ("kidney_l", 60, 60, 28, 38, 0.42, 0.78),
    _Organ("portal_vein", -25, 5, 9, 9, 0.3, 0.48),
    _Organ("ivc", -22, 40, 11, 10, 0.1, 1.2),
    _Organ("aorta", 8, 40, 12, 12, -1.0, 2.0),
    _Organ("vertebra", 0, 85, 24, 22, -1.0, 2.0),
    _Organ("cancellous", 0, 85, 20, 18, -1.0, 2.0),
    _Organ("canal", 0, 105, 8, 8, -1.0, 2.0),
)

# HU per organ and phase (non-contrast, arterial, portal venous, delayed).
_HU: dict[str, tuple[int, int, int, int]] = {
    "body": (-100, -100, -100, -100),
    "muscle": (45, 50, 60, 55),
    "lung_r": (-850, -850, -850, -850),
    "lung_l": (-850, -850, -850, -850),
    "liver": (55, 70, 115, 90),
    "spleen": (45, 120, 125, 95),
    "kidney_r": (30, 170, 180, 140),
    "kidney_l": (30, 170, 180, 140),
    "portal_vein": (40, 80, 180, 120),
    "ivc": (40, 60, 150, 110),
    "aorta": (40, 320, 160, 110),
    "vertebra": (1000, 1000, 1000, 1000),
    "cancellous": (230, 230, 230, 230),
    "canal": (20, 20, 20, 20),
}
# MR signal (arbitrary units) per organ for T1, T2, FLAIR-like contrasts.
_MR: dict[str, tuple[int, int, int]] = {
    "body": (900, 700, 600), "muscle": (350, 250, 300), "lung_r": (20, 30, 20),
    "lung_l": (20, 30, 20), "liver": (550, 300, 350), "spleen": (400, 600, 450),
    "kidney_r": (450, 650, 400), "kidney_l": (450, 650, 400), "portal_vein": (100, 800, 100),
    "ivc": (100, 800, 100), "aorta": (80, 150, 80), "vertebra": (100, 80, 100),
    "cancellous": (600, 450, 500),
    "canal": (150, 1200, 150),
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


@dataclass(frozen=True, slots=True)
class CtVariant:
    """What makes a CT phantom series hard to classify, and what its header says.

    `contrast_agent`: None keeps the default (an IV agent on contrast phases, none on the
    non-contrast one); "" writes no Contrast/Bolus elements; any other text is written as
    the agent with `route`. `bolus_start_s`: seconds from Contrast/Bolus Start Time to the
    acquisition (None: no start time). `description`: None keeps the phase's description.
    `aorta_hu` overrides the aorta's blood HU.
    """

    description: str | None = None
    contrast_agent: str | None = None
    route: str = "IV"
    bolus_start_s: float | None = None
    periaortic_fat: bool = False  # fat outlines the aorta (as in most adults)
    oral_bowel: bool = False  # bowel loops full of positive oral contrast (~600 HU)
    dense_bone: bool = False  # cortex 1800 HU, cancellous 450 HU
    calcification: bool = False  # calcified plaques on the aortic wall (~900 HU)
    aorta_hu: int | None = None


# Extra structures of a variant: bowel over the muscle, fat under the vessels, plaques over
# the aorta.
_FAT = _Organ("periaortic_fat", 8, 40, 21, 21, -1.0, 2.0)
_BOWEL = (_Organ("bowel_1", -45, -40, 20, 15, 0.35, 0.95),
          _Organ("bowel_2", 45, -45, 22, 14, 0.4, 1.0),
          _Organ("bowel_3", 32, 22, 10, 10, 0.55, 0.62))  # beside the aorta, short
_PLAQUES = (_Organ("plaque_1", 18, 36, 3, 3, -1.0, 2.0),
            _Organ("plaque_2", 0, 32, 3, 2.5, -1.0, 2.0))


def _organs(variant: CtVariant | None) -> tuple[_Organ, ...]:
    if variant is None:
        return _ORGANS
    organs = list(_ORGANS)
    after_muscle = organs.index(next(o for o in organs if o.name == "muscle")) + 1
    if variant.oral_bowel:
        organs[after_muscle:after_muscle] = list(_BOWEL)
    if variant.periaortic_fat:  # over the liver's ellipsoid, under the vessels
        at = organs.index(next(o for o in organs if o.name == "portal_vein"))
        organs[at:at] = [_FAT]
    if variant.calcification:
        at = organs.index(next(o for o in organs if o.name == "aorta")) + 1
        organs[at:at] = list(_PLAQUES)
    return tuple(organs)


def _variant_hu(values: dict[str, int], variant: CtVariant | None) -> dict[str, int]:
    if variant is None:
        return values
    values = dict(values, periaortic_fat=-100, plaque_1=900, plaque_2=900,
                  bowel_1=600, bowel_2=550, bowel_3=650)
    if variant.dense_bone:
        values.update(vertebra=1800, cancellous=450)
    if variant.aorta_hu is not None:
        values["aorta"] = variant.aorta_hu
    return values


def _radius_maps(size: int, pixel_mm: float, organs: tuple[_Organ, ...] = _ORGANS,
                 ) -> dict[str, npt.NDArray[np.float32]]:
    """Normalised squared radius of every organ's ellipse on the image grid."""
    coords = (np.arange(size, dtype=np.float32) - (size - 1) / 2) * pixel_mm
    maps = {}
    for organ in organs:
        dx = ((coords - organ.cx) / organ.rx) ** 2
        dy = ((coords - organ.cy) / organ.ry) ** 2
        maps[organ.name] = dy[:, None] + dx[None, :]
    return maps


def _scale(organ: _Organ, frac: float) -> float:
    """Squared cross-section scale of an ellipsoid at fractional height `frac` (0 if absent)."""
    centre = (organ.z_from + organ.z_to) / 2
    half = (organ.z_to - organ.z_from) / 2
    t = (frac - centre) / half
    return max(0.0, 1.0 - t * t) if organ.z_from > -1 else 1.0


def _paint_slice(
    out: npt.NDArray[np.int16], maps: dict[str, npt.NDArray[np.float32]], frac: float,
    values: dict[str, int], background: int, organs: tuple[_Organ, ...] = _ORGANS,
) -> None:
    out.fill(background)
    for organ in organs:
        s2 = _scale(organ, frac)
        if s2 <= 0:
            continue
        np.copyto(out, np.int16(values[organ.name]), where=maps[organ.name] <= s2)


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
    organs = _organs(variant)
    maps = _radius_maps(size, pixel_mm, organs)
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
            values = _variant_hu({k: v[phase_index] for k, v in _HU.items()}, variant)
            stored = {k: v + 1024 for k, v in values.items()}
            background = -1000 + 1024
            seconds = 10 * 3600 + 20 * 60 + _PHASE_SECONDS[label]
            _contrast_header(ds, label, variant, seconds)
        else:
            seq_index = list(MR_SEQUENCES).index(label) if label in MR_SEQUENCES else 0
            stored = {k: v[seq_index] for k, v in _MR.items()}
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
            _paint_slice(pixels, maps, frac, stored, background, organs)
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
