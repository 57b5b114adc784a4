"""The lane resizer is Pillow's BOX filter bit for bit, and the assembled frames are the
plain per-frame computation (window, then Pillow BOX resize, grey into R, G and B)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from radraft.core.settings import FrameRecipe
from radraft.reporting.frames import build_frame_sequence
from radraft.reporting.frames.box import LANE_DTYPES, LaneResizer, axis_plan
from radraft.reporting.frames.render import Layout, packed_lut
from radraft.reporting.frames.windows import CT_WINDOWS, ct_window, stored_value_lut
from radraft.reporting.phantom import write_phantom_study

SIZES = [1, 2, 3, 5, 7, 8, 13, 28, 63, 64, 100, 127, 128, 255, 256, 320, 384, 447, 448, 449,
         500, 512, 640, 768, 1024]


def _pillow(image: np.ndarray, height: int, width: int) -> np.ndarray:
    return np.asarray(Image.fromarray(image, mode="L").resize((width, height),
                                                              Image.Resampling.BOX))


@pytest.mark.parametrize("lanes", sorted(LANE_DTYPES))
@pytest.mark.parametrize(("rows", "cols", "height", "width"), [
    (512, 512, 448, 448), (512, 384, 448, 336), (256, 256, 448, 448), (128, 128, 64, 64),
    (512, 512, 224, 224), (500, 512, 448, 448), (100, 60, 84, 50), (64, 64, 64, 32),
    (64, 64, 32, 64), (7, 9, 5, 4), (1, 5, 3, 3), (300, 200, 448, 299)])
def test_lane_resizer_equals_pillow_box(lanes: int, rows: int, cols: int, height: int,
                                        width: int) -> None:
    rng = np.random.default_rng(rows * 7 + cols)
    dtype = LANE_DTYPES[lanes]
    grey = rng.integers(0, 256, (rows, cols, lanes), dtype=np.uint8)
    grey[: rows // 3] = 255  # hard edges as well as noise
    grey[rows // 3: rows // 2] = 0
    packed = np.ascontiguousarray(grey).view(dtype).reshape(rows, cols)
    out = np.empty((height, width), dtype=dtype)
    LaneResizer(rows, cols, height, width, dtype).resize(packed, out)
    got = out.view(np.uint8).reshape(height, width, lanes)
    for lane in range(lanes):
        expected = _pillow(np.ascontiguousarray(grey[..., lane]), height, width)
        assert np.array_equal(got[..., lane], expected), f"lane {lane}"


def test_two_tap_plans_match_pillow_on_every_size() -> None:
    rng = np.random.default_rng(3)
    covered = 0
    for n_in in SIZES:
        for n_out in SIZES:
            plan = axis_plan(n_in, n_out)
            if plan is None:
                assert n_in / n_out >= 2  # only scales of 2 or more need more taps
                continue
            covered += 1
            row = rng.integers(0, 256, (2, n_in), dtype=np.uint8)
            mean = (row[:, plan.first].astype(np.uint16) + row[:, plan.second] + 1) >> 1
            assert np.array_equal(mean.astype(np.uint8), _pillow(row, 2, n_out)), (n_in, n_out)
    assert covered > 350


def test_packed_lut_lanes_are_the_single_window_tables() -> None:
    mappings = tuple(ct_window(w) for w in ("abdomen", "lung", "bone"))
    packed = packed_lut(mappings, 1.0, -1024.0, True, 16, False)
    for lane, mapping in enumerate(mappings):
        single = stored_value_lut(mapping, 1.0, -1024.0, True, 16, False)
        assert np.array_equal((packed >> (8 * lane)) & 0xFF, single)


def _reference(study: Path, windows: list[str], size: int) -> np.ndarray:
    """Every slice × window, the plain way (as bench.frames' naive reference)."""
    datasets = [pydicom.dcmread(p) for p in sorted(study.rglob("*.dcm"))]
    series: dict[str, list[pydicom.Dataset]] = {}
    for ds in datasets:
        series.setdefault(ds.SeriesInstanceUID, []).append(ds)
    frames = []
    for members in sorted(series.values(), key=lambda m: int(m[0].SeriesNumber)):
        members.sort(key=lambda d: -float(d.ImagePositionPatient[2]))  # axial, head first
        for name in windows:
            centre, width = CT_WINDOWS[name]
            for ds in members:
                hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
                grey = np.rint(np.clip((hu - (centre - width / 2)) / width, 0, 1) * 255)
                layout = Layout.fit(ds.Rows, ds.Columns, size)
                small = _pillow(grey.astype(np.uint8), layout.height, layout.width)
                frames.append(np.repeat(small[..., None], 3, axis=2))
    return np.stack(frames)


@pytest.mark.parametrize("size", [112, 100, 64])  # two-tap periodic, Pillow fallback, 2×
def test_frames_equal_the_plain_computation(tmp_path: Path, size: int) -> None:
    study = write_phantom_study(tmp_path / "ct", phases=["arterial", "portal venous"],
                                slices=6, size=128)
    windows = ["abdomen", "lung", "bone"]
    seq = build_frame_sequence(study.directory, recipe=FrameRecipe(
        windows=windows, frame_size=size, max_frames=10_000))
    assert np.array_equal(seq.frames, _reference(study.directory, windows, size))
    packed = build_frame_sequence(study.directory, recipe=FrameRecipe(
        windows=windows, pack_windows=True, frame_size=size, max_frames=10_000))
    plain = seq.frames[:, :, :, 0].reshape(2, 3, 6, size, size)  # phase, window, slice
    assert np.array_equal(packed.frames, np.moveaxis(plain, 1, -1).reshape(12, size, size, 3))
