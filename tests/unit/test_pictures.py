"""Contact sheet and MP4 of a frame sequence."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw

from radraft.core.settings import FrameRecipe
from radraft.reporting.frames import build_frame_sequence, segment_line
from radraft.reporting.phantom import write_phantom_study
from radraft.reporting.pictures import _font, _wrap, contact_sheet, write_mp4


def test_contact_sheet_and_mp4(tmp_path: Path) -> None:
    study = write_phantom_study(tmp_path / "s", slices=6, size=64)
    seq = build_frame_sequence(study.directory, recipe=FrameRecipe(
        windows=["abdomen", "bone"], frame_size=64, max_frames=64))
    assert len(seq.segments) == 6
    sheet = contact_sheet(seq, thumb=32, columns=4)
    # One band per segment: its whole table line wrapped (18 pixels a line, 4 below) and
    # two rows of 32-pixel tiles (6 frames / 4).
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    lines = [len(_wrap(segment_line(seg).replace("–", "-"), draw, _font(14), 4 * 32 - 8))
             for seg in seq.segments]
    assert sheet.size == (4 * 32, sum(4 + 18 * n + 2 * 32 for n in lines))
    top = 4 + 18 * lines[0]
    pixels = np.asarray(sheet)
    assert pixels[top + 12:top + 32, :32].max() > 200  # the first tile shows the spine
    path = write_mp4(seq, tmp_path / "seq.mp4", fps=4)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    assert len(decoded) == seq.frame_count
    assert decoded[0].shape == (64, 64, 3)
