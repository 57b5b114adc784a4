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
