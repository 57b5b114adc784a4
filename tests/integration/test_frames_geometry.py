"""Frame order follows slice positions, whatever the files say; every frame maps back.

Phantom studies with known truth are altered the way real series go wrong: shuffled
instance numbers, reversed order, oblique and tilted orientations, mixed orientations and
duplicate positions in one series, a localizer mixed in, a slice without geometry.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from radraft.core.settings import FrameRecipe
from radraft.core.uids import derived_uid
from radraft.reporting.frames import build_frame_sequence, segment_table_text
from radraft.reporting.phantom import PhantomStudy, write_phantom_study
from radraft.reporting.phantom_objects import write_legacy_multiframe_mr
from radraft.reporting.sequence import FrameSequence

RECIPE = FrameRecipe(windows=["abdomen"], frame_size=64, max_frames=1000)
SLICES = 9


def _phantom(tmp_path: Path, **kwargs: object) -> PhantomStudy:
    return write_phantom_study(tmp_path / "study", phases=("portal venous",), slices=SLICES,
                               size=64, **kwargs)  # type: ignore[arg-type]


def _rewrite(study: PhantomStudy, change: Callable[[int, Dataset], None]) -> None:
    for i, path in enumerate(study.series[-1].paths):
        ds = pydicom.dcmread(path)
        change(i, ds)
        ds.save_as(path)


def _positions(study: Path | PhantomStudy, seq: FrameSequence) -> dict[str, np.ndarray]:
    """SOP UID → Image Position (Patient) read back from the files."""
    root = study.directory if isinstance(study, PhantomStudy) else study
    found = {}
    for path in root.rglob("*.dcm"):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        found[str(ds.SOPInstanceUID)] = np.array([float(v) for v in ds.ImagePositionPatient])
    return found


def _assert_sorted_along(seq: FrameSequence, positions: dict[str, np.ndarray],
                         normal: np.ndarray, segment: int = 0) -> list[float]:
    seg = seq.segments[segment]
    refs = seq.refs[seg.frame_start:seg.frame_stop - seg.padded_frames]
    distances = [float(np.dot(positions[r.sop_instance_uid], normal)) for r in refs]
    assert distances == sorted(distances), distances
    assert len(set(r.sop_instance_uid for r in refs)) == len(refs)
    return distances


def _assert_pixels_match(seq: FrameSequence, study: PhantomStudy) -> None:
    """Each frame equals its cited file windowed: the map points at the right instance."""
    by_sop = {str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID): path
              for path in study.directory.rglob("*") if path.is_file()}
    for t, ref in enumerate(seq.refs):
        ds = pydicom.dcmread(by_sop[ref.sop_instance_uid])
        hu = ds.pixel_array.astype(np.float32) * float(ds.RescaleSlope) + float(
            ds.RescaleIntercept)
        grey = np.rint(np.clip((hu + 160) / 400, 0, 1) * 255).astype(np.uint8)
        assert np.array_equal(seq.frames[t, :, :, 0], grey), f"frame {t}"


def test_shuffled_instance_numbers_and_names(tmp_path: Path) -> None:
    study = _phantom(tmp_path)
    numbers = list(range(1, SLICES + 1))
    random.Random(4).shuffle(numbers)
    _rewrite(study, lambda i, ds: setattr(ds, "InstanceNumber", numbers[i]))
    for i, path in enumerate(study.series[-1].paths):
        path.rename(path.with_name(f"x{numbers[i]:03d}"))
    seq = build_frame_sequence(study.directory, recipe=RECIPE)
    # Axial stacks run head → feet: z decreasing.
    order = [r.sop_instance_uid for r in seq.refs[:SLICES]]
    assert order == list(study.series[-1].sop_uids)
    assert seq.segments[0].plane == "axial" and seq.segments[0].combine == "single"
    assert seq.segments[0].padded_frames == 1 and seq.frame_count == SLICES + 1
    _assert_pixels_match(seq, study)


def test_reversed_slice_order_from_datasets(tmp_path: Path) -> None:
    study = _phantom(tmp_path)
    datasets = [pydicom.dcmread(p) for p in reversed(study.series[-1].paths)]
    for number, ds in enumerate(datasets, start=1):
        ds.InstanceNumber = number  # instance 1 at the feet
    seq = build_frame_sequence(datasets, recipe=RECIPE)
    assert [r.sop_instance_uid for r in seq.refs[:SLICES]] == list(study.series[-1].sop_uids)
    _assert_pixels_match(seq, study)


def _rotation(axis: np.ndarray, degrees: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    a = math.radians(degrees)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(a) * k + (1 - math.cos(a)) * k @ k


@pytest.mark.parametrize(("axis", "degrees", "plane"), [
    ((1.0, 0.0, 0.0), 15.0, "axial"),  # gantry tilt
    ((1.0, 1.0, 0.0), 50.0, "oblique"),
])
def test_tilted_and_oblique_stacks(tmp_path: Path, axis: tuple[float, float, float],
                                   degrees: float, plane: str) -> None:
    study = _phantom(tmp_path)
    rot = _rotation(np.array(axis), degrees)
    row, col = rot @ np.array([1.0, 0, 0]), rot @ np.array([0, 1.0, 0])
    normal = np.cross(row, col)
    order = list(range(SLICES))
    random.Random(1).shuffle(order)

    def orient(i: int, ds: Dataset) -> None:
        ds.ImageOrientationPatient = [round(float(v), 6) for v in (*row, *col)]
        # Slice k sits k·3 mm along the normal; files are written in shuffled order.
        ds.ImagePositionPatient = [round(float(v), 4) for v in normal * 3.0 * order[i]]

    _rewrite(study, orient)
    seq = build_frame_sequence(study.directory, recipe=RECIPE)
    assert seq.segments[0].plane == plane
    # Canonical direction: the dominant axis runs head → feet (z), A → P (y), R → L (x).
    axis_index = int(np.argmax(np.abs(normal)))
    wanted = -1.0 if axis_index == 2 else 1.0
    canonical = normal if np.sign(normal[axis_index]) == wanted else -normal
    distances = _assert_sorted_along(seq, _positions(study, seq), canonical)
    assert len(distances) == SLICES
    _assert_pixels_match(seq, study)


def test_mixed_orientations_split_into_stacks(tmp_path: Path) -> None:
    study = _phantom(tmp_path)

    def coronal_half(i: int, ds: Dataset) -> None:
        if i % 2:
            ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
            ds.ImagePositionPatient = [-100.0, float(10 * i), 50.0]

    _rewrite(study, coronal_half)
    seq = build_frame_sequence(study.directory, recipe=RECIPE)
    planes = sorted(seg.plane for seg in seq.segments)
    assert planes == ["axial", "coronal"]
    positions = _positions(study, seq)
    for index, seg in enumerate(seq.segments):
        normal = np.array([0, 0, -1.0]) if seg.plane == "axial" else np.array([0, 1.0, 0])
        _assert_sorted_along(seq, positions, normal, index)
    assert sum(seg.slices_in_stack for seg in seq.segments) == SLICES
    _assert_pixels_match(seq, study)


def test_duplicate_positions_become_two_stacks(tmp_path: Path) -> None:
    study = _phantom(tmp_path)
    series = study.series[-1]
    for i, path in enumerate(series.paths):
        ds = pydicom.dcmread(path)
        ds.SOPInstanceUID = derived_uid("2.25", "dup", str(i))
        ds.InstanceNumber = 100 + i
        ds.save_as(path.with_name(f"dup{i:03d}.dcm"))
    seq = build_frame_sequence(study.directory, recipe=RECIPE)
    assert [seg.slices_in_stack for seg in seq.segments] == [SLICES, SLICES]
    # Same series number, description and plane: the table tells the two apart.
    assert [seg.notes for seg in seq.segments] == [
        ("stack 1 of 2 of the series",), ("stack 2 of 2 of the series",)]
    positions = _positions(study, seq)
    for index in range(2):
        distances = _assert_sorted_along(seq, positions, np.array([0, 0, -1.0]), index)
        assert len(set(distances)) == SLICES
    _assert_pixels_match(seq, study)


def test_localizer_is_skipped_and_listed(tmp_path: Path) -> None:
    study = _phantom(tmp_path, include_localizer=True)
    seq = build_frame_sequence(study.directory, recipe=RECIPE)
    scout = study.series[0]
    assert scout.label == "localizer"
    assert [(e.series_uid, e.reason) for e in seq.excluded] == [(scout.series_uid, "localizer")]
    assert all(r.sop_instance_uid != scout.sop_uids[0] for r in seq.refs)
    _assert_pixels_match(seq, study)


def test_slice_without_position_is_kept_apart_not_fatal(tmp_path: Path) -> None:
    study = _phantom(tmp_path)
    broken = study.series[-1].paths[4]
    ds = pydicom.dcmread(broken)
    del ds.ImagePositionPatient
    ds.save_as(broken)
    seq = build_frame_sequence(study.directory, recipe=RECIPE)
    assert [(s.plane, s.slices_in_stack) for s in seq.segments] == [
        ("axial", SLICES - 1), ("position not given", 1)]
    assert "position not given: frame order" in seq.segments[1].notes
    assert seq.refs[seq.segments[1].frame_start].sop_instance_uid == ds.SOPInstanceUID


def test_legacy_multiframe_without_positions_keeps_the_study(tmp_path: Path) -> None:
    """The issue's case: a legacy multi-frame MR with no per-frame positions; the other
    series are kept, its frames come in frame-number order, an object whose geometry
    cannot be read is listed with the reason and its file."""
    written = write_legacy_multiframe_mr(tmp_path / "study", frames=6, size=64)
    seq = build_frame_sequence(tmp_path / "study", recipe=RECIPE)
    axial, legacy = seq.segments
    assert (axial.series_number, axial.plane, axial.slices_in_stack) == (3, "axial", 4)
    assert (legacy.series_number, legacy.plane) == (5, "position not given")
    assert [r.frame_number for r in seq.refs[legacy.frame_start:legacy.frame_stop]] == [
        1, 2, 3, 4, 5, 6]
    # The disc grows with the frame number: the frames' brightness rises in that order.
    means = [float(seq.frames[t].mean()) for t in range(legacy.frame_start, legacy.frame_stop)]
    assert means == sorted(means) and means[0] < means[-1]
    assert "position not given" in segment_table_text(seq)
    [bad] = seq.excluded
    assert bad.series_description == "broken geometry"
    assert str(written["bad"]) in bad.reason and "Image Position" in bad.reason


def test_two_series_with_the_same_number_and_description_are_told_apart(
        tmp_path: Path) -> None:
    study = write_phantom_study(tmp_path / "s", phases=("arterial", "portal venous"),
                                slices=4, size=32)
    for series in study.series:
        for path in series.paths:
            ds = pydicom.dcmread(path)
            ds.SeriesNumber = 2
            ds.SeriesDescription = "Body 1.0"
            ds.save_as(path)
    seq = build_frame_sequence(study.directory, recipe=RECIPE)
    lines = segment_table_text(seq).splitlines()
    assert all('CT abdomen series 2 "Body 1.0" axial' in line for line in lines[:2])
    tails = {study.series[i].series_uid[-8:] for i in range(2)}
    assert {seq.segments[i].notes[-1][-8:] for i in range(2)} == tails


def test_one_truncated_file_is_left_out_not_fatal(tmp_path: Path) -> None:
    study = _phantom(tmp_path)
    broken = study.series[-1].paths[2]
    broken.write_bytes(broken.read_bytes()[:-100])
    seq = build_frame_sequence(study.directory, recipe=RECIPE)
    assert seq.segments[0].slices_in_stack == SLICES - 1
    [gone] = seq.excluded
    assert gone.reason.startswith("Pixel Data truncated") and str(broken) in gone.reason


def test_enhanced_multiframe_mr_from_single_frames(tmp_path: Path) -> None:
    """An enhanced (legacy converted) MR: per-frame functional groups place every frame;
    the frames come head → feet and cite the object's frame numbers."""
    from highdicom.legacy import LegacyConvertedEnhancedMRImage

    study = write_phantom_study(tmp_path / "mr", modality="MR", phases=("T2",), slices=6,
                                size=32)
    singles = [pydicom.dcmread(p) for p in study.series[0].paths]
    random.Random(3).shuffle(singles)
    enhanced = LegacyConvertedEnhancedMRImage(
        singles, series_instance_uid=derived_uid("2.25", "emr-series"), series_number=9,
        sop_instance_uid=derived_uid("2.25", "emr-sop"), instance_number=1)
    seq = build_frame_sequence([enhanced], recipe=RECIPE)
    [seg] = seq.segments
    assert (seg.series_number, seg.plane, seg.slices_in_stack) == (9, "axial", 6)
    z = [float(fg.PlanePositionSequence[0].ImagePositionPatient[2])
         for fg in enhanced.PerFrameFunctionalGroupsSequence]
    cited = [r.frame_number for r in seq.refs[seg.frame_start:seg.frame_stop]]
    assert all(r.sop_instance_uid == enhanced.SOPInstanceUID for r in seq.refs)
    assert [z[n - 1] for n in cited] == sorted(z, reverse=True)
    assert seg.label == "T2"
