"""Budgeted assembly with priors, the segment table text and JSON."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom

from radraft.core.settings import FrameRecipe
from radraft.reporting.frames import (
    build_frame_sequence,
    qwen_token_budget,
    segment_table_json,
    segment_table_text,
)
from radraft.reporting.phantom import write_phantom_study


def test_budget_with_prior_slabs_and_table(tmp_path: Path) -> None:
    current = write_phantom_study(tmp_path / "c", slices=30, size=48)
    prior = write_phantom_study(tmp_path / "p", slices=30, size=48, prior_of=current,
                                phases=("portal venous",))
    recipe = FrameRecipe(windows=["abdomen"], frame_size=48, max_frames=40, prior_share=0.25)
    seq = build_frame_sequence(current.directory, priors=[prior.directory], recipe=recipe)
    assert seq.frame_count <= 40
    assert [s.is_prior for s in seq.segments] == [False, False, False, True]
    assert all(s.frame_count % 2 == 0 for s in seq.segments)
    assert seq.segments[-1].frame_count == 10
    assert sum(s.frame_count for s in seq.segments[:3]) == 30
    lines = segment_table_text(seq).splitlines()
    assert lines[0] == ('frames 0–9: CT abdomen series 1 "ABDOMEN NATIV 5mm" axial, '
                        "non-contrast, 2026-11-20, abdomen window, "
                        "slab average of 30 slices (~3.0 per frame)")
    assert lines[3].startswith('frames 30–39: CT abdomen series 1 "ABDOMEN PORTAL VENOUS '
                               '1.25mm" axial, portal venous, 2025-11-20')
    assert lines[3].endswith("PRIOR")
    # A slab frame lists its 3 source slices and cites the central one.
    ref = seq.refs[0]
    assert len(ref.sources) == 3 and ref.sop_instance_uid == ref.sources[1][0]
    assert ref.sources[0][0] == current.series[0].sop_uids[0]
    assert seq.refs[-1].is_prior and seq.refs[-1].study_uid == prior.study_uid
    rows = segment_table_json(seq)
    assert rows[0]["frames"][0]["sources"][2] == [current.series[0].sop_uids[2], None]
    assert seq.metadata["patient_id"] == current.patient_id and "PatientName" not in str(
        seq.metadata)


def test_token_budget_and_packed_windows(tmp_path: Path) -> None:
    study = write_phantom_study(tmp_path / "c", slices=40, size=56, phases=("arterial",))
    recipe = FrameRecipe(windows=["lung", "mediastinum", "bone"], pack_windows=True,
                         frame_size=56, max_frames=1000)
    # 56² is 2×2 merged patches: 4 tokens per frame pair; 40 tokens → 20 frames.
    seq = build_frame_sequence(study.directory, recipe=recipe,
                               token_budget=qwen_token_budget(40))
    assert seq.frame_count == 20
    assert seq.segments[0].mapping == "lung+mediastinum+bone"
    frame = seq.frames[10].astype(int)
    # Lung window (R) is brighter than bone window (B) on soft tissue.
    assert frame[..., 0].mean() > frame[..., 2].mean()
    assert "lung/mediastinum/bone windows as R/G/B" in segment_table_text(seq)


def test_mip_and_sample_combination(tmp_path: Path) -> None:
    study = write_phantom_study(tmp_path / "c", slices=12, size=32, phases=("arterial",))
    base = {"windows": ["angio"], "frame_size": 32, "max_frames": 4}
    mip = build_frame_sequence(study.directory, recipe=FrameRecipe(**base, combine="mip"))
    sample = build_frame_sequence(study.directory,
                                  recipe=FrameRecipe(**base, combine="sample"))
    assert mip.segments[0].combine == "mip" and len(mip.refs[0].sources) == 3
    assert len(sample.refs[0].sources) == 1
    assert sample.refs[0].sop_instance_uid == mip.refs[0].sop_instance_uid
    assert np.all(mip.frames >= sample.frames)


def test_phase_measured_on_the_aorta_when_metadata_is_silent(tmp_path: Path) -> None:
    study = write_phantom_study(tmp_path / "c", slices=8, size=128)
    datasets = []
    for path in study.paths:
        ds = pydicom.dcmread(path)
        ds.SeriesDescription = "BODY 1.0"
        if "ContrastBolusAgent" in ds:
            del ds.ContrastBolusAgent
        datasets.append(ds)
    seq = build_frame_sequence(datasets, recipe=FrameRecipe(windows=["abdomen"],
                                                            frame_size=32))
    # Unenhanced aorta inside muscle: not outlined, not located, nothing asserted; the
    # portal venous aorta (160 HU) is IV contrast of no stated phase.
    assert [(s.label, s.label_source) for s in seq.segments] == [
        ("contrast phase not determined", ""), ("arterial", "image"),
        ("IV contrast, phase not determined", "image")]
    assert "arterial (image: aorta 3" in segment_table_text(seq)


def test_series_include_and_budget_exclusions_are_listed(tmp_path: Path) -> None:
    study = write_phantom_study(tmp_path / "c", slices=6, size=32)
    only_pv = build_frame_sequence(study.directory, recipe=FrameRecipe(
        windows=["abdomen"], frame_size=32, series_include=["portal"]))
    assert [s.label for s in only_pv.segments] == ["portal venous"]
    assert sorted(e.reason for e in only_pv.excluded) == [
        "not in profile series_include"] * 2
    tight = build_frame_sequence(study.directory, recipe=FrameRecipe(
        windows=["abdomen", "lung"], frame_size=32), max_frames=9)
    # 6 segments, 8 frames (even): 4 segments of 2 frames, the last 2 listed as excluded.
    assert [s.frame_count for s in tight.segments] == [2, 2, 2, 2]
    budget = [e for e in tight.excluded if e.reason.startswith("frame budget")]
    assert [e.series_uid for e in budget] == [study.series[2].series_uid] * 2
    assert "frame budget (8 frames) exhausted" in segment_table_text(tight)
