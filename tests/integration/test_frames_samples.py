"""The real samples: every image decodes (every transfer syntax), every study assembles,
the broken files each get a decision (frames, or a FrameError naming the file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from helpers.data import DICOM_DATA
from PIL import Image

from radraft.core.errors import FrameError
from radraft.core.settings import FrameRecipe
from radraft.reporting.frames import build_frame_sequence, segment_table_text
from radraft.reporting.frames.loading import read_frame_into, read_header
from radraft.reporting.frames.render import Layout

RECIPE = FrameRecipe(windows=["abdomen"], frame_size=64, max_frames=512)
_IMAGE_FILES = sorted(
    p for folder in ("transfer_syntaxes", "modalities", "series_mr_wrist_mesa",
                     "study_ct_wb_contrast_kos", "study_ct_scout_axial_tiny",
                     "study_mr_mra_tiny", "study_mr_siemens_localizer_fmap")
    for p in (DICOM_DATA / folder).rglob("*") if p.is_file() and p.suffix != ".md"
    and "PixelData" in pydicom.dcmread(p, stop_before_pixels=False, defer_size=64))


@pytest.mark.parametrize("path", _IMAGE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_sample_image_decodes_like_pydicom(path: Path) -> None:
    inst = read_header(path)
    assert inst is not None
    reference = pydicom.dcmread(path).pixel_array
    if inst.frame_count == 1:
        reference = reference[None]
    for frame in range(inst.frame_count):
        shape = (inst.rows, inst.columns) + ((inst.samples,) if inst.samples > 1 else ())
        out = np.empty(shape, dtype=inst.stored_dtype if inst.samples == 1 else np.uint8)
        read_frame_into(inst, frame, out)
        assert np.array_equal(out, reference[frame]), f"{path} frame {frame + 1}"


def test_ct_study_with_kos_sorted_by_position_not_file_name() -> None:
    seq = build_frame_sequence(DICOM_DATA / "study_ct_wb_contrast_kos", recipe=RECIPE)
    assert [e.reason for e in seq.excluded] == ["non-image (KO)"]
    # 'CT CONTRAST' is two slabs 504 mm apart: two segments, the gap stated.
    assert [s.slices_in_stack for s in seq.segments] == [10, 3, 7]
    assert [s.series_number for s in seq.segments] == [2, 3, 3]
    assert seq.segments[1].notes[0] == "part 1 of 2 of the series"
    assert seq.segments[2].notes[0] == "part 2 of 2 of the series, after a gap of 504 mm"
    text = segment_table_text(seq)
    assert 'CT headneck series 3 "CT CONTRAST" axial' in text
    z = {}
    for path in (DICOM_DATA / "study_ct_wb_contrast_kos").glob("0*.dcm"):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        z[str(ds.SOPInstanceUID)] = float(ds.ImagePositionPatient[2])
    for seg in seq.segments:
        positions = [z[r.sop_instance_uid] for r in seq.refs[seg.frame_start:seg.frame_stop]]
        assert positions == sorted(positions, reverse=True)  # head → feet
    wb = seq.segments[0]
    assert z[seq.refs[wb.frame_start].sop_instance_uid] == -761.5


def test_enhanced_ct_frames_cite_frame_numbers() -> None:
    ds = pydicom.dcmread(DICOM_DATA / "modalities" / "eCT_Supplemental.dcm")
    seq = build_frame_sequence([ds], recipe=RECIPE)
    assert seq.frame_count == 2
    z = [float(fg.PlanePositionSequence[0].ImagePositionPatient[2])
         for fg in ds.PerFrameFunctionalGroupsSequence]
    head_first = sorted((1, 2), key=lambda n: -z[n - 1])
    assert [r.frame_number for r in seq.refs] == head_first
    assert {r.sop_instance_uid for r in seq.refs} == {ds.SOPInstanceUID}
    assert seq.refs[0].sop_class_uid == "1.2.840.10008.5.1.4.1.1.2.1"
    # A perfusion map: derived, no contrast phase claimed, not on an HU window.
    seg = seq.segments[0]
    assert seg.label == "perfusion rcbf map (derived)"
    assert "derived (perfusion rcbf)" in seg.notes and seg.mapping == "percentile 1-99"


def test_derived_projections_are_one_labelled_run_in_their_order() -> None:
    seq = build_frame_sequence(DICOM_DATA / "study_mr_mra_tiny", recipe=RECIPE)
    [seg] = seq.segments
    assert (seg.plane, seg.slices_in_stack, seg.series_number) == ("projection", 7, 700)
    assert "derived (projection)" in seg.notes
    numbers = [int(pydicom.dcmread(p, stop_before_pixels=True).InstanceNumber)
               for p in sorted((DICOM_DATA / "study_mr_mra_tiny" / "MR700").iterdir())]
    by_sop = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID): n
              for p, n in zip(sorted((DICOM_DATA / "study_mr_mra_tiny" / "MR700").iterdir()),
                              numbers, strict=True)}
    shown = [by_sop[r.sop_instance_uid] for r in seq.refs[seg.frame_start:seg.frame_start + 7]]
    assert shown == sorted(numbers)


def test_mr_series_percentile_mapping_and_localizers() -> None:
    seq = build_frame_sequence(DICOM_DATA / "series_mr_wrist_mesa", recipe=RECIPE)
    assert seq.frame_count == 16 and seq.segments[0].mapping == "percentile 1-99"
    frames = seq.frames[:, :, :, 0]
    assert frames.min() == 0 and frames.max() == 255
    scout = build_frame_sequence(DICOM_DATA / "study_mr_mra_tiny", recipe=RECIPE)
    assert sorted(e.reason for e in scout.excluded) == ["localizer", "localizer"]
    ct = build_frame_sequence(DICOM_DATA / "study_ct_scout_axial_tiny", recipe=RECIPE)
    assert [(e.series_description, e.instance_count) for e in ct.excluded] == [("Scout", 2)]
    assert ct.segments[0].slices_in_stack == 5


def test_secondary_captures_and_colour_images() -> None:
    seq = build_frame_sequence(DICOM_DATA / "transfer_syntaxes", recipe=RECIPE)
    reasons = {e.reason for e in seq.excluded}
    assert reasons == {"secondary capture"}
    colour = [s for s in seq.segments if s.mapping == "colour"]
    assert [s.modality for s in colour] == ["US"]
    frame = seq.frames[colour[0].frame_start]
    assert not np.array_equal(frame[..., 0], frame[..., 1])  # really colour
    assert "SC" not in segment_table_text(seq).split("not shown")[0]


def test_monochrome1_is_inverted() -> None:
    seq = build_frame_sequence(DICOM_DATA / "modalities" / "dx_image.dcm", recipe=RECIPE)
    ds = pydicom.dcmread(DICOM_DATA / "modalities" / "dx_image.dcm")
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    layout = Layout.fit(ds.Rows, ds.Columns, RECIPE.frame_size)
    region = seq.frames[0, layout.top:layout.top + layout.height,
                        layout.left:layout.left + layout.width, 0].astype(np.float64)
    stored = np.asarray(Image.fromarray(ds.pixel_array.astype(np.float32)).resize(
        (layout.width, layout.height), Image.Resampling.BOX), dtype=np.float64)
    assert seq.segments[0].plane == "projection"
    # High stored values are dark in MONOCHROME1: the frame is anti-correlated with them.
    assert np.corrcoef(region.ravel(), stored.ravel())[0, 1] < -0.9


@pytest.mark.parametrize(("name", "outcome"), [
    ("CTImageStorage_bad_meta.dcm", "frames"),
    ("MR_small_padded.dcm", "frames"),
    ("MR_truncated.dcm", "truncated"),
    ("UN_sequence.dcm", "no image series"),
    ("badVR.dcm", "no image series"),
    ("meta_missing_tsyntax.dcm", "cannot be decoded"),
    ("no_meta.dcm", "no image series"),
    ("reportsi_with_empty_number_tags.dcm", "no image series"),
])
def test_broken_files_get_a_decision(name: str, outcome: str) -> None:
    path = DICOM_DATA / "broken" / name
    if outcome == "frames":
        seq = build_frame_sequence(path, recipe=RECIPE)
        assert seq.frame_count == 2 and seq.refs[0].sop_instance_uid
        return
    with pytest.raises(FrameError, match=outcome) as info:
        build_frame_sequence(path, recipe=RECIPE)
    assert name in str(info.value)


def test_non_dicom_file_is_listed_not_dropped(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not an image")
    seq_dir = tmp_path / "series"
    seq_dir.mkdir()
    for path in (DICOM_DATA / "series_mr_wrist_mesa").glob("MR0*.dcm"):
        (seq_dir / path.name).write_bytes(path.read_bytes())
    seq = build_frame_sequence(tmp_path, recipe=RECIPE)
    assert [(e.series_description, e.reason) for e in seq.excluded] == [
        ("notes.txt", "not a DICOM file")]
    assert seq.segments[0].slices_in_stack == 9
