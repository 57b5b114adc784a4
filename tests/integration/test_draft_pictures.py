"""draft.html rendered by real headless Chromium and the contact sheet, saved to
tests/artifacts for people to look at; what they must show is asserted on the documents
and the pixels (banner colour, cited frames framed in red)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
from facts_helpers import FINDING, scripted
from PIL import Image

from radraft.core.settings import Settings
from radraft.reporting.phantom import write_phantom_study
from radraft.worker.draft_local import draft_folder

CHROMIUM = "/usr/bin/chromium"


def test_draft_html_and_contact_sheet_pictures(tmp_path: Path, artifacts: Path) -> None:
    study = write_phantom_study(tmp_path / "in", modality="CT", slices=8, size=64)
    folder = study.paths[0].parent.parent
    settings = Settings(data_dir=tmp_path / "data", site={"timezone": "Europe/Paris"})
    _product, files = draft_folder(settings, folder, [], "ct-generic", tmp_path / "out",
                                   backend=scripted("urgent"))
    header = pydicom.dcmread(study.paths[0], stop_before_pixels=True)

    page = files["html"].read_text("utf-8")
    assert page.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in page
    assert "<style>" in page and "AI draft — not reviewed" in page
    for fact in (str(header.PatientID), str(header.AccessionNumber),
                 str(header.StudyDescription)):
        assert fact in page
    assert 'class="badge badge-urgent"' in page and FINDING in page
    assert f"series {header.SeriesNumber}, image " in page

    shot = artifacts / "draft_html.png"
    shot.unlink(missing_ok=True)
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                    "--hide-scrollbars", f"--screenshot={shot}", "--window-size=1000,1300",
                    files["html"].resolve().as_uri()],
                   capture_output=True, timeout=120, check=True)
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape[1] == 1000
    # The banner across the top is the notice's dark red (#7a1f1f), not a blank page.
    assert tuple(pixels[5, 500]) == (122, 31, 31)
    # The urgent badge's orange (#d35400) is somewhere on the page.
    assert ((pixels == (211, 84, 0)).all(axis=2)).sum() > 50

    sheet_path = artifacts / "contact_sheet.png"
    shutil.copy(files["sheet"], sheet_path)
    sheet = np.asarray(Image.open(sheet_path).convert("RGB"))
    assert tuple(sheet[3, 3]) == (211, 84, 0)  # the banner in the triage's colour
    red = (sheet == (255, 64, 64)).all(axis=2)
    assert red.sum() > 2 * 3 * 64  # at least the two cited frames framed

    # The SR as dcmtk shows it (dsr2html), for people to look at: headings, the notice
    # before the findings, one statement per line (SEPARATE).
    page_sr = subprocess.run(["dsr2html", str(files["sr"])], capture_output=True, timeout=60,
                             check=True).stdout.decode("utf-8", "replace")
    assert page_sr.index("AI-generated draft") < page_sr.index("Findings")
    sr_html = tmp_path / "sr.html"
    sr_html.write_text(page_sr, "utf-8")
    sr_shot = artifacts / "sr_dsr2html.png"
    sr_shot.unlink(missing_ok=True)
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                    "--hide-scrollbars", f"--screenshot={sr_shot}", "--window-size=1000,1400",
                    sr_html.as_uri()], capture_output=True, timeout=120, check=True)
    assert Image.open(sr_shot).size == (1000, 1400)
