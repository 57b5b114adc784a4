"""A synthetic PET/CT study with known activity: the CT phantom and an FDG PET of it.

The PET paints the CT phantom's organs with known SUVbw (body 1.0, liver 2.5, spleen 2.0,
kidneys 4.0, aorta 1.8, marrow 1.5, lungs 0.5, two lesions 8.0 and 12.0) and stores the
activity concentration (Bq/ml) the scanner would: SUV × decayed dose / weight, with a
RescaleSlope per slice. Options make the cases that real studies present: Units CNTS,
no Patient Weight, Decay Correction ADMIN or NONE (then each slice's activity decays with
its Acquisition Time), another Frame of Reference, or no overlap in z with the CT.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, PositronEmissionTomographyImageStorage

from radraft.core.uids import derived_uid
from radraft.reporting.phantom import PhantomStudy, write_phantom_study
from radraft.reporting.phantom_anatomy import (
    ORGANS,
    CtVariant,
    Organ,
    paint_slice,
    radius_maps,
)

F18_HALF_LIFE_S = 6586.2
SUV: dict[str, float] = {
    "body": 0.6, "muscle": 1.0, "lung_r": 0.5, "lung_l": 0.5, "liver": 2.5, "spleen": 2.0,
    "kidney_r": 4.0, "kidney_l": 4.0, "portal_vein": 1.8, "ivc": 1.8, "aorta": 1.8,
    "vertebra": 1.0, "cancellous": 1.5, "canal": 0.8, "lesion_1": 8.0, "lesion_2": 12.0,
}
_LESIONS = (Organ("lesion_1", -60, -20, 12, 12, 0.3, 0.45),
            Organ("lesion_2", 60, -30, 9, 9, 0.1, 0.22))
_INJECTION = (9, 30, 0)  # 09:30:00, one hour before the scan


@dataclass(frozen=True, slots=True)
class PetOptions:
    units: str = "BQML"
    weight_kg: float | None = 75.0
    dose_bq: float = 370e6
    decay_correction: str = "START"  # START | ADMIN | NONE
    same_frame_of_reference: bool = True
    z_offset_mm: float = 0.0  # shift of the PET's slices (no overlap when large)
    slices: int = 48
    size: int = 64


@dataclass(frozen=True, slots=True)
class PetCtStudy:
    ct: PhantomStudy
    pet_series_uid: str
    pet_paths: tuple[Path, ...]
    directory: Path
    options: PetOptions


def write_pet_ct_study(out_dir: Path, *, ct_slices: int = 80, ct_size: int = 128,
                       ct_thickness: float = 5.0, options: PetOptions | None = None,
                       seed: int = 0) -> PetCtStudy:
    """A PET/CT under `out_dir/<study_uid>/`: CT series 1 (attenuation CT, no contrast)
    and PET series 2 covering the same z range (unless `z_offset_mm` moves it)."""
    opts = options or PetOptions()
    ct = write_phantom_study(out_dir, phases=("non-contrast",), slices=ct_slices,
                             size=ct_size, seed=seed, accession="ACC-PETCT",
                             slice_thickness=ct_thickness,
                             variant=CtVariant("CT AC WB", "", periaortic_fat=True))
    series_uid = derived_uid("2.25", "phantom-pet", ct.study_uid)
    frame_of_reference = derived_uid("2.25", "phantom-for", ct.study_uid)
    if not opts.same_frame_of_reference:
        frame_of_reference = derived_uid("2.25", "phantom-pet-for", ct.study_uid)
    ct_top, ct_bottom = ct.series[0].positions[0], ct.series[0].positions[-1]
    spacing = (ct_top - ct_bottom) / max(opts.slices - 1, 1)
    pixel_mm = 380.0 / opts.size
    organs = (*ORGANS, *_LESIONS)
    maps = radius_maps(opts.size, pixel_mm, organs)
    values = {name: round(suv * 1000) for name, suv in SUV.items()}
    series_dir = ct.directory / "002"
    series_dir.mkdir(parents=True, exist_ok=True)
    base = _pet_base(ct, series_uid, frame_of_reference, opts, pixel_mm)
    paths = []
    suv_milli = np.empty((opts.size, opts.size), dtype=np.int16)
    rng = np.random.default_rng(seed)
    for i in range(opts.slices):
        frac = i / max(opts.slices - 1, 1)
        paint_slice(suv_milli, maps, frac, values, 0, organs)
        acquired = 10 * 3600 + 30 * 60 + 120 * (i * 4 // max(opts.slices, 1))  # 4 beds
        elapsed = acquired - (_INJECTION[0] * 3600 + _INJECTION[1] * 60)
        if opts.decay_correction == "ADMIN":
            dose_now = opts.dose_bq
        elif opts.decay_correction == "START":
            dose_now = opts.dose_bq * math.pow(2.0, -3600.0 / F18_HALF_LIFE_S)
        else:
            dose_now = opts.dose_bq * math.pow(2.0, -elapsed / F18_HALF_LIFE_S)
        weight_g = (opts.weight_kg or 75.0) * 1000
        bqml = suv_milli.astype(np.float64) / 1000 * dose_now / weight_g
        bqml *= 1 + rng.normal(0, 0.02, bqml.shape)
        bqml = np.maximum(bqml, 0)
        slope = max(float(bqml.max()), 1.0) / 32000
        stored = np.rint(bqml / slope).astype(np.int16)
        ds = base.copy()
        ds.SOPInstanceUID = derived_uid("2.25", "phantom-pet-sop", series_uid, str(i))
        ds.InstanceNumber = i + 1
        ds.ImageIndex = i + 1
        z = ct_top - i * spacing + opts.z_offset_mm
        ds.ImagePositionPatient = [round(-(opts.size - 1) / 2 * pixel_mm, 4),
                                   round(-(opts.size - 1) / 2 * pixel_mm, 4), round(z, 3)]
        ds.SliceLocation = round(z, 3)
        ds.AcquisitionTime = _clock(acquired)
        since_start = acquired - (10 * 3600 + 30 * 60)
        ds.ActualFrameDuration = 120_000  # ms, one bed
        ds.FrameReferenceTime = f"{since_start * 1000 + 60_000:.1f}"
        if opts.decay_correction != "NONE":
            ds.DecayFactor = f"{math.pow(2.0, (since_start + 60) / F18_HALF_LIFE_S):.6f}"
        ds.ContentTime = ds.AcquisitionTime
        ds.RescaleSlope = f"{slope:.8g}"
        ds.PixelData = stored.tobytes()
        path = series_dir / f"{i:04d}.dcm"
        _write(ds, path)
        paths.append(path)
    return PetCtStudy(ct, series_uid, tuple(paths), ct.directory, opts)


def _clock(seconds: int) -> str:
    return f"{seconds // 3600:02d}{seconds // 60 % 60:02d}{seconds % 60:02d}"


def _pet_base(ct: PhantomStudy, series_uid: str, frame_of_reference: str, opts: PetOptions,
              pixel_mm: float) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = PositronEmissionTomographyImageStorage
    ds.Modality = "PT"
    ds.Manufacturer = "RADRAFT PHANTOM"
    ds.StudyInstanceUID = ct.study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = frame_of_reference
    ds.PositionReferenceIndicator = ""
    ds.SeriesNumber = 2
    ds.SeriesDescription = "PET WB AC"
    ds.StudyDescription = "PET/CT WHOLE BODY"
    ds.BodyPartExamined = "WHOLEBODY"
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = ct.study_date
    ds.StudyTime = "101500"
    ds.SeriesTime = "103000"
    ds.AccessionNumber = ct.accession
    ds.PatientID = ct.patient_id
    ds.PatientName = f"PHANTOM^{ct.patient_id}"
    ds.PatientSex = "F"
    ds.PatientBirthDate = ""
    ds.ReferringPhysicianName = ""
    ds.StudyID = "1"
    ds.CollimatorType = "NONE"
    ds.PatientOrientationCodeSequence = [_code("F-10450", "SRT", "recumbent")]
    ds.PatientOrientationCodeSequence[0].PatientOrientationModifierCodeSequence = [
        _code("F-10340", "SRT", "supine")]
    ds.PatientGantryRelationshipCodeSequence = [_code("F-10480", "SRT", "feet-first")]
    ds.PatientAge = "061Y"
    if opts.weight_kg is not None:
        ds.PatientWeight = opts.weight_kg
    ds.Units = opts.units
    ds.DecayCorrection = opts.decay_correction
    ds.CorrectedImage = ["ATTN", "DECY"] if opts.decay_correction != "NONE" else ["ATTN"]
    ds.SeriesType = ["WHOLE BODY", "IMAGE"]
    ds.CountsSource = "EMISSION"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    item = Dataset()
    item.Radiopharmaceutical = "Fluorodeoxyglucose"
    item.RadionuclideTotalDose = f"{opts.dose_bq:.6g}"
    item.RadionuclideHalfLife = f"{F18_HALF_LIFE_S}"
    item.RadiopharmaceuticalStartTime = _clock(_INJECTION[0] * 3600 + _INJECTION[1] * 60)
    item.RadiopharmaceuticalStartDateTime = f"{ct.study_date}{item.RadiopharmaceuticalStartTime}"
    item.RadionuclideCodeSequence = [_code("C-111A1", "SRT", "^18^Fluorine")]
    item.RadiopharmaceuticalCodeSequence = [_code("C-B1031", "SRT", "Fluorodeoxyglucose F^18^")]
    ds.RadiopharmaceuticalInformationSequence = [item]
    ds.NumberOfSlices = opts.slices
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [round(pixel_mm, 6), round(pixel_mm, 6)]
    ds.SliceThickness = 3.0
    ds.Rows = ds.Columns = opts.size
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleIntercept = 0
    return ds


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def _write(ds: Dataset, path: Path) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.save_as(path, enforce_file_format=True)
