"""Windows chosen by body part and extent; `profile: auto` chosen by modality and body
part, and said in the outputs (frames summary, draft report.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest

from radraft.core.recipe import FrameRecipe
from radraft.core.settings import Settings
from radraft.reporting.frames import build_frame_sequence
from radraft.reporting.frames.profile_choice import choose_profile
from radraft.reporting.frames.windows import auto_windows
from radraft.reporting.phantom import write_phantom_study
from radraft.reporting.phantom_objects import write_legacy_multiframe_mr
from radraft.reporting.phantom_pet import PetOptions, write_pet_ct_study

PROFILES = Settings().profiles


@pytest.mark.parametrize(("words", "extent", "names"), [
    ("HEAD", 120, ("brain", "subdural", "bone")),
    ("NECK CT NECK W CONTRAST", 200, ("soft tissue", "bone")),
    ("CHEST", 300, ("lung", "mediastinum", "bone")),
    ("ABDOMEN", 350, ("abdomen", "liver", "bone")),
    ("PELVIS", 250, ("abdomen", "liver", "bone")),
    ("", 900, ("lung", "abdomen", "bone")),  # whole body by length
    ("WHOLEBODY", 300, ("lung", "abdomen", "bone")),
    ("", 200, ("abdomen", "lung", "bone")),
])
def test_auto_windows(words: str, extent: float, names: tuple[str, ...]) -> None:
    assert auto_windows(words, extent)[0] == names


def _body_part(study_dir: Path, part: str, description: str | None = None) -> None:
    for path in study_dir.rglob("*.dcm"):
        ds = pydicom.dcmread(path)
        ds.BodyPartExamined = part
        ds.StudyDescription = f"CT {part}"
        if description is not None:
            ds.SeriesDescription = ds.ProtocolName = description
        ds.save_as(path)


def test_neck_ct_gets_neck_windows_and_a_profile_overrides(tmp_path: Path) -> None:
    study = write_phantom_study(tmp_path, phases=("non-contrast",), slices=6, size=32)
    _body_part(study.directory, "NECK", "NECK 2mm")
    auto = build_frame_sequence(study.directory, recipe=FrameRecipe(windows=["auto"],
                                                                   frame_size=32))
    assert [s.mapping for s in auto.segments] == ["soft tissue", "bone"]
    chosen = build_frame_sequence(study.directory, recipe=PROFILES["ct-generic"].frames)
    assert [s.mapping for s in chosen.segments] == ["soft tissue", "bone"]
    fixed = build_frame_sequence(study.directory, recipe=FrameRecipe(
        windows=["abdomen", "lung"], frame_size=32))
    assert [s.mapping for s in fixed.segments] == ["abdomen", "lung"]


def test_profile_auto_by_modality_and_body_part(tmp_path: Path) -> None:
    multiphase = write_phantom_study(tmp_path / "abd", slices=4, size=32)
    head = write_phantom_study(tmp_path / "head", phases=("non-contrast",), slices=4,
                               size=32)
    _body_part(head.directory, "HEAD", "HEAD 5mm")
    chest = write_phantom_study(tmp_path / "chest", phases=("non-contrast",), slices=4,
                                size=32)
    _body_part(chest.directory, "CHEST", "THORAX 1mm")
    write_legacy_multiframe_mr(tmp_path / "mrbrain", frames=3, size=32)
    mr_abdomen = write_phantom_study(tmp_path / "mrabd", modality="MR", slices=4, size=32)
    pet = write_pet_ct_study(tmp_path / "pet", ct_slices=4, ct_size=32,
                             options=PetOptions(slices=4, size=32))
    got = {name: choose_profile(path, PROFILES)[0] for name, path in (
        ("abd", multiphase.directory), ("head", head.directory), ("chest", chest.directory),
        ("mrbrain", tmp_path / "mrbrain"), ("mrabd", mr_abdomen.directory),
        ("pet", pet.directory))}
    assert got == {"abd": "ct-abdomen-multiphase", "head": "ct-head", "chest": "ct-chest",
                   "mrbrain": "mr-brain", "mrabd": "mr-generic", "pet": "pet-ct"}
    name, why = choose_profile(tmp_path / "mrbrain", {"ct-generic", "mr-generic"})
    assert name == "mr-generic" and "'mr-brain' is not configured" in why


MR_BRAIN_ANSWER = {
    "exam": "MR brain", "technique": "T1", "comparison": "none",
    "clinical_history": "test", "findings": [], "impression": [{"rank": 1, "text": "x"}],
    "recommendations": [], "triage": {"level": "routine", "reasons": []},
    "limitations": "stand-in model"}


def test_draft_auto_uses_the_mr_brain_profile_and_says_so(tmp_path: Path) -> None:
    """The issue's case: `radraft draft` on an MR brain must not use the CT profile."""
    from radraft.reporting.model.stand_in import StandInBackend
    from radraft.worker.draft_local import draft_folder

    write_legacy_multiframe_mr(tmp_path / "study", frames=3, size=32)
    settings = Settings(data_dir=tmp_path / "data")
    _product, written = draft_folder(settings, tmp_path / "study", [], "auto",
                                     tmp_path / "out", backend=StandInBackend(MR_BRAIN_ANSWER))
    report = json.loads(written["report"].read_text())
    assert report["profile"] == "mr-brain"
    assert report["profile_chosen_by"].startswith("auto: MR of the head")
