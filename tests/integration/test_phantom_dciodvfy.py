"""dciodvfy (dicom3tools) accepts the phantom's CT images without errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from radraft.reporting.phantom import write_phantom_study


@pytest.mark.parametrize(("modality", "iod"), [("CT", "CTImage"), ("MR", "MRImage")])
def test_phantom_image_passes_dciodvfy(tmp_path: Path, modality: str, iod: str) -> None:
    study = write_phantom_study(tmp_path, modality=modality, slices=2, size=32)
    result = subprocess.run(["/usr/bin/dciodvfy", str(study.paths[-1])],
                            capture_output=True, text=True, check=False)
    text = result.stdout + result.stderr
    assert iod in text
    errors = [line for line in text.splitlines() if line.startswith("Error")]
    assert errors == [], text


@pytest.mark.parametrize("decay", ["START", "NONE"])
def test_pet_phantom_passes_dciodvfy(tmp_path: Path, decay: str) -> None:
    from radraft.reporting.phantom_pet import PetOptions, write_pet_ct_study

    study = write_pet_ct_study(tmp_path, ct_slices=2, ct_size=32,
                               options=PetOptions(slices=2, size=32, decay_correction=decay))
    result = subprocess.run(["/usr/bin/dciodvfy", str(study.pet_paths[-1])],
                            capture_output=True, text=True, check=False)
    text = result.stdout + result.stderr
    assert "PETImage" in text
    errors = [line for line in text.splitlines() if line.startswith("Error")]
    assert errors == [], text
