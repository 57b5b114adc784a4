"""Windowing: presets, the LUT and float paths agree, percentiles."""

from __future__ import annotations

import numpy as np
import pytest

from radraft.core.errors import FrameError
from radraft.reporting.frames.windows import (
    ct_window,
    percentile_mapping,
    stored_value_lut,
    window_float,
)


def test_window_edges_and_centre() -> None:
    abdomen = ct_window("abdomen")  # 40 / 400
    hu = np.array([-1000, -160, 40, 240, 3000], dtype=np.float32)
    assert window_float(hu, abdomen).tolist() == [0, 0, 128, 255, 255]


@pytest.mark.parametrize("signed", [True, False])
def test_lut_equals_float_windowing(signed: bool) -> None:
    rng = np.random.default_rng(1)
    dtype = np.int16 if signed else np.uint16
    stored = rng.integers(np.iinfo(dtype).min, np.iinfo(dtype).max, 10_000).astype(dtype)
    for name in ("lung", "bone", "brain"):
        mapping = ct_window(name)
        lut = stored_value_lut(mapping, 1.0, -1024.0, signed, 16, False)
        via_lut = lut[stored.view(np.uint16)]
        via_float = window_float(stored.astype(np.float32) - 1024, mapping)
        assert np.array_equal(via_lut, via_float)
        inverted = stored_value_lut(mapping, 1.0, -1024.0, signed, 16, True)
        assert np.array_equal(inverted[stored.view(np.uint16)], 255 - via_float)


def test_unknown_window_is_named() -> None:
    with pytest.raises(FrameError, match="'soft'"):
        ct_window("soft")


def test_percentile_mapping_ignores_outliers() -> None:
    values = np.concatenate([np.linspace(100, 200, 10_000), [1e6]])
    mapping = percentile_mapping(values)
    assert 100 <= mapping.low < 102 and 198 < mapping.high <= 200
