"""PET read as PET: SUVbw from the header (checked against a computation written here),
a fixed SUV scale, a rotating MIP, CT-PET fusion only with a shared Frame of Reference
and overlapping z, and plain statements where SUV or fusion cannot be had."""

from __future__ import annotations

import datetime as dt
import math
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pydicom
import pytest
from PIL import Image

from radraft.core.recipe import FrameRecipe
from radraft.reporting.frames import build_frame_sequence, segment_table_text
from radraft.reporting.frames.study import scan_study
from radraft.reporting.phantom_pet import SUV, PetOptions, write_pet_ct_study
from radraft.reporting.prompts import build_prompt

RECIPE = FrameRecipe(windows=["abdomen"], frame_size=64, max_frames=400)


def _expected_suv_factor(path: Path) -> float:
    """SUVbw per Bq/ml for one PET file, from its header, written independently of
    radraft: weight (g) / (dose × 2^(−Δt / T½)), Δt from the injection to the time the
    image is decay corrected to (scan start, injection, or the slice's acquisition)."""
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    info = ds.RadiopharmaceuticalInformationSequence[0]

    def when(date: str, time: str) -> dt.datetime:
        return dt.datetime.strptime(date + time[:6], "%Y%m%d%H%M%S")

    injected = when(info.RadiopharmaceuticalStartDateTime[:8],
                    info.RadiopharmaceuticalStartDateTime[8:])
    mode = ds.DecayCorrection
    if mode == "ADMIN":
        elapsed = 0.0
    elif mode == "START":
        elapsed = (when(ds.SeriesDate, ds.SeriesTime) - injected).total_seconds()
    else:
        elapsed = (when(ds.AcquisitionDate, ds.AcquisitionTime) - injected).total_seconds()
    dose = float(info.RadionuclideTotalDose) * 0.5 ** (elapsed / float(
        info.RadionuclideHalfLife))
    return float(ds.PatientWeight) * 1000.0 / dose


@pytest.mark.parametrize("decay", ["START", "ADMIN", "NONE"])
def test_suv_against_an_independent_computation(tmp_path: Path, decay: str) -> None:
    study = write_pet_ct_study(tmp_path, ct_slices=20, ct_size=64,
                               options=PetOptions(decay_correction=decay, slices=16))
    [pet] = [s for s in scan_study(study.directory, is_prior=False).stacks
             if s.modality == "PT"]
    assert pet.suv and pet.label is not None and pet.label.text == "PET SUVbw"
    assert f"decay correction {decay}" in pet.label.evidence
    by_sop = {sl.inst.sop_uid: sl for sl in pet.stack.slices}
    liver: list[float] = []
    for path in study.pet_paths:
        ds = pydicom.dcmread(path)
        sl = by_sop[ds.SOPInstanceUID]
        factor = _expected_suv_factor(path)
        assert sl.slope == pytest.approx(float(ds.RescaleSlope) * factor, rel=1e-9)
        suv = ds.pixel_array * float(ds.RescaleSlope) * factor
        # The liver's centre (55 mm right, 15 mm anterior of the centre) where it is cut.
        row = round(31.5 - 15 / (380 / 64))
        col = round(31.5 - 55 / (380 / 64))
        if abs(suv[row, col] - SUV["liver"]) < 0.5:
            liver.append(float(suv[row - 1:row + 2, col - 1:col + 2].mean()))
    assert len(liver) >= 3
    assert np.median(liver) == pytest.approx(SUV["liver"], rel=0.03)


def test_pet_is_shown_on_the_fixed_suv_scale_with_mip_and_fusion(tmp_path: Path) -> None:
    study = write_pet_ct_study(tmp_path, ct_slices=20, ct_size=64,
                               options=PetOptions(slices=16))
    seq = build_frame_sequence(study.directory, recipe=RECIPE)
    pet = [s for s in seq.segments if s.modality == "PT"]
    assert [s.plane for s in pet] == ["axial", "rotating MIP", "axial fusion"]
    assert pet[0].mapping.startswith("SUV 0-10 inverted grey")
    assert pet[1].frame_count == 12
    assert 'fused with CT series 1 "CT AC WB"' in pet[2].notes
    # Inverted grey, fixed scale: liver (SUV 2.5) is 255 − 2.5/10 · 255 ≈ 191 wherever it is.
    frames = seq.frames[pet[0].frame_start:pet[0].frame_stop, :, :, 0]
    liver_grey = frames[:, round(31.5 - 15 / (380 / 64)), round(31.5 - 55 / (380 / 64))]
    assert np.any(np.abs(liver_grey.astype(int) - 191) <= 6)
    assert frames.max() == 255  # SUV 0 (air) is white
    # The MIP's views differ (it rotates), the fusion frames are colour.
    mip = seq.frames[pet[1].frame_start:pet[1].frame_stop]
    assert not np.array_equal(mip[0], mip[4])
    fusion = seq.frames[pet[2].frame_start:pet[2].frame_stop].astype(int)
    assert np.abs(fusion[..., 0] - fusion[..., 2]).max() > 50
    assert {r.sources[1][0] for r in seq.refs[pet[2].frame_start:pet[2].frame_stop]} <= {
        p for s in study.ct.series for p in s.sop_uids}


@pytest.mark.parametrize(("options", "said"), [
    (PetOptions(slices=16, same_frame_of_reference=False), "do not share a Frame of Reference"),
    (PetOptions(slices=16, z_offset_mm=-2000), "do not overlap in patient z"),
])
def test_no_fusion_without_shared_frame_or_overlap_and_it_is_said(
        tmp_path: Path, options: PetOptions, said: str) -> None:
    study = write_pet_ct_study(tmp_path, ct_slices=20, ct_size=64, options=options)
    seq = build_frame_sequence(study.directory, recipe=RECIPE)
    planes = [s.plane for s in seq.segments if s.modality == "PT"]
    assert planes == ["axial", "rotating MIP"]
    pet = next(s for s in seq.segments if s.modality == "PT")
    assert any(said in note for note in pet.notes)
    assert any(said in note for note in seq.metadata["notes"])
    prompt = build_prompt(seq)
    assert said in prompt.text
    # Each axial CT and PET segment states the z it covers: the difference is visible.
    covers = {s.modality: n for s in seq.segments if s.plane == "axial"
              for n in s.notes if n.startswith("covers z")}
    assert set(covers) == {"CT", "PT"}


@pytest.mark.parametrize(("options", "reason"), [
    (PetOptions(slices=16, units="CNTS"), "Units CNTS (not Bq/ml)"),
    (PetOptions(slices=16, weight_kg=None), "missing Patient Weight"),
])
def test_suv_not_computable_is_named_and_percentiles_shown(
        tmp_path: Path, options: PetOptions, reason: str) -> None:
    study = write_pet_ct_study(tmp_path, ct_slices=20, ct_size=64, options=options)
    seq = build_frame_sequence(study.directory, recipe=RECIPE)
    pet = next(s for s in seq.segments if s.modality == "PT")
    assert pet.label == "PET, SUV not computable"
    assert reason in pet.label_evidence and "percentile" in pet.label_evidence
    assert pet.mapping == "percentile 1-99"
    assert "SUV not computable" in segment_table_text(seq)


def test_suv_scale_helper_matches_for_each_slice_without_decay_correction(
        tmp_path: Path) -> None:
    study = write_pet_ct_study(tmp_path, ct_slices=20, ct_size=64,
                               options=PetOptions(decay_correction="NONE", slices=16))
    factors = [_expected_suv_factor(p) for p in study.pet_paths]
    # Four bed positions two minutes apart: the later slices have decayed more.
    assert len({round(f, 9) for f in factors}) == 4
    assert factors[-1] / factors[0] == pytest.approx(math.pow(2, 360 / 6586.2), rel=1e-6)


def test_frames_command_on_pet_ct_writes_sheet_and_mp4(tmp_path: Path, artifacts: Path) -> None:
    study = write_pet_ct_study(tmp_path / "study")
    out = tmp_path / "out"
    exe = Path(sys.executable).with_name("radraft")
    result = subprocess.run([str(exe), "frames", str(study.directory), "--out", str(out),
                             "--profile", "auto", "--max-frames", "256"],
                            capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "profile pet-ct" in result.stdout
    sheet = Image.open(out / "contact_sheet.png")
    sheet.save(artifacts / "pet_ct_contact_sheet.png")
    with av.open(str(out / "sequence.mp4")) as container:
        assert container.streams.video[0].frames > 0
    pixels = np.asarray(sheet.convert("RGB")).astype(int)
    # Colour (the fusion) and near-white thumbnails (inverted-grey PET) are both there.
    assert (np.abs(pixels[..., 0] - pixels[..., 2]) > 80).sum() > 500
    assert (pixels.min(axis=2) > 230).sum() > 5000


def test_tight_budget_keeps_a_rotating_mip(tmp_path: Path) -> None:
    study = write_pet_ct_study(tmp_path, ct_slices=40, ct_size=64,
                               options=PetOptions(slices=32))
    seq = build_frame_sequence(study.directory, recipe=FrameRecipe(
        windows=["abdomen", "lung", "bone"], frame_size=32, max_frames=40))
    [mip] = [s for s in seq.segments if s.plane == "rotating MIP"]
    assert mip.frame_count == 8 and seq.frame_count <= 40
    assert "8 views 45.0° apart" in " ".join(mip.notes)
