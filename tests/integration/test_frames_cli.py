"""`radraft frames` end to end in a real process: pictures, table, summary, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
from PIL import Image

from radraft.reporting.phantom import write_phantom_study


def _radraft(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("radraft")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, check=False,
                          timeout=120)


def test_frames_command_writes_pictures_and_table(tmp_path: Path) -> None:
    study = write_phantom_study(tmp_path / "study", slices=12, size=64, include_localizer=True)
    prior = write_phantom_study(tmp_path / "prior", slices=12, size=64, prior_of=study,
                                phases=("portal venous",))
    out = tmp_path / "out"
    result = _radraft("frames", str(study.directory), "--prior", str(prior.directory),
                      "--profile", "ct-abdomen-multiphase", "--max-frames", "40", "--out",
                      str(out))
    assert result.returncode == 0, result.stderr
    assert "frames of 448×448, 4 segments, profile ct-abdomen-multiphase" in result.stdout
    assert "localizer" in result.stdout and "… frames" in result.stderr
    table = json.loads((out / "segments.json").read_text())
    segments = [r for r in table["segments"] if r["kind"] == "segment"]
    assert [s["is_prior"] for s in segments] == [False, False, False, True]
    assert sum(s["frame_stop"] - s["frame_start"] for s in segments) <= 40
    assert table["metadata"]["patient_id"] == study.patient_id
    assert Image.open(out / "contact_sheet.png").size[0] == 12 * 128
    with av.open(str(out / "sequence.mp4")) as container:
        assert container.streams.video[0].frames == segments[-1]["frame_stop"]


def test_frames_command_errors_are_clear(tmp_path: Path) -> None:
    study = write_phantom_study(tmp_path / "study", slices=2, size=32)
    unknown = _radraft("frames", str(study.directory), "--profile", "ct-nope", "--out",
                       str(tmp_path / "o"))
    assert unknown.returncode == 2 and "unknown profile 'ct-nope'" in unknown.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    none = _radraft("frames", str(empty), "--out", str(tmp_path / "o"))
    assert none.returncode == 1 and "no image series" in none.stderr
