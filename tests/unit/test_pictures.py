"""Contact sheet and MP4 of a frame sequence."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from radraft.core.settings import FrameRecipe
from radraft.reporting.frames import build_frame_sequence
from radraft.reporting.phantom import write_phantom_study
from radraft.reporting.pictures import contact_sheet, write_mp4


def test_contact_sheet_and_mp4(tmp_path: Path) -> None:
    study = write_phantom_study(tmp_path / "s", slices=6, size=64)
    seq = build_frame_sequence(study.directory, recipe=FrameRecipe(
        windows=["abdomen", "bone"], frame_size=64, max_frames=64))
    assert len(seq.segments) == 6
    sheet = contact_sheet(seq, thumb=32, columns=4)
    # One band per segment: a 22-pixel title and two rows of 32-pixel tiles (6 frames / 4).
    assert sheet.size == (4 * 32, 6 * (22 + 2 * 32))
    pixels = np.asarray(sheet)
    assert pixels[22:54, :32].max() > 200  # the first tile shows the bright spine
    path = write_mp4(seq, tmp_path / "seq.mp4", fps=4)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    assert len(decoded) == seq.frame_count
    assert decoded[0].shape == (64, 64, 3)
