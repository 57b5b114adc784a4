"""`radraft draft` in a real process with the real tiny model: `--config` after the
subcommand, each run its own identifiers, and the model's version a weights digest."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import hl7
import pydicom
import pytest

from radraft.reporting.phantom import write_phantom_study
from radraft.worker.cli.main import hoist_config


def _radraft(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("radraft")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, check=False,
                          timeout=900)


def test_config_is_hoisted_from_anywhere_but_after_a_double_dash() -> None:
    assert hoist_config(["serve", "--config", "a.yaml"]) == ["--config", "a.yaml", "serve"]
    assert hoist_config(["rules", "check", "--config=b.yaml", "f"]) == [
        "--config=b.yaml", "rules", "check", "f"]
    assert hoist_config(["worker", "-c", "4"]) == ["worker", "-c", "4"]  # its concurrency
    assert hoist_config(["x", "--", "--config", "c"]) == ["x", "--", "--config", "c"]


def test_config_after_the_subcommand(tmp_path: Path) -> None:
    config = tmp_path / "radraft.yaml"
    config.write_text("site: {name: Hospital After}\n")
    for args in (["config", "show", "--config", str(config)],
                 ["--config", str(config), "config", "show"]):
        result = _radraft(*args)
        assert result.returncode == 0, result.stderr
        assert "Hospital After" in result.stdout
    missing = _radraft("serve", "--config", str(tmp_path / "missing.yaml"))
    assert missing.returncode != 0
    assert "No such option" not in missing.stderr and "missing.yaml" in missing.stderr


@pytest.mark.slow
def test_two_runs_two_drafts_with_their_own_identifiers(tmp_path: Path,
                                                         tiny_model: Path) -> None:
    study = write_phantom_study(tmp_path / "in", slices=4, size=48, phases=["portal venous"])
    config = tmp_path / "radraft.yaml"
    config.write_text(f"data_dir: {tmp_path / 'data'}\nmodel: {{path: {tiny_model}}}\n"
                      "site: {timezone: Europe/Paris}\n")
    runs = []
    for name in ("one", "two"):
        out = tmp_path / name
        result = _radraft("draft", str(study.directory), "--out", str(out),
                          "--config", str(config))
        assert result.returncode == 0, result.stderr
        runs.append(out)
    first, second = (pydicom.dcmread(r / "sr.dcm") for r in runs)
    # Different moments, so different bytes: never under the same identifiers.
    assert first.SOPInstanceUID != second.SOPInstanceUID
    assert first.SeriesInstanceUID == second.SeriesInstanceUID  # one series per study/profile
    control = [str(hl7.parse((r / "oru.hl7").read_text())["MSH"][0][10]) for r in runs]
    assert control[0] != control[1]
    for run in runs:
        report = json.loads((run / "report.json").read_text())
        assert report["uids"]["sr"] == str(pydicom.dcmread(run / "sr.dcm").SOPInstanceUID)
    # The model's version: the digest of its weights, never the folder it was loaded from.
    weights = sorted(p for p in tiny_model.iterdir() if p.suffix == ".safetensors")
    digest = hashlib.sha256()
    for path in weights:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    version = "sha256:" + digest.hexdigest()[:16]
    assert list(first.SoftwareVersions)[1] == version
    tid1500 = pydicom.dcmread(runs[0] / "tid1500.dcm")
    texts = [str(getattr(item, "TextValue", "")) for group in tid1500.ContentSequence
             for item in _walk(group)]
    assert version in texts  # TID 4019 Algorithm Version
    assert all(str(tiny_model) not in t for t in texts)


def _walk(item: pydicom.Dataset) -> list[pydicom.Dataset]:
    found = [item]
    for child in item.get("ContentSequence", []):
        found += _walk(child)
    return found
