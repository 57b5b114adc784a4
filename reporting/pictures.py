"""Pictures of a frame sequence for people: a labelled contact sheet PNG and an MP4."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from radraft.core.errors import FrameError
from radraft.reporting.frames.table import segment_line, series_name
from radraft.reporting.sequence import FrameSequence

_BACKGROUND = (24, 24, 28)
_LABEL = (255, 214, 102)
_INDEX = (160, 220, 255)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _wrap(text: str, draw: ImageDraw.ImageDraw,
          font: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: int) -> list[str]:
    """`text` broken at spaces into lines no wider than `width` pixels."""
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if current and draw.textlength(candidate, font=font) > width:
            lines.append(current)
            current = word
        else:
            current = candidate
    return [*lines, current]


_BANNER_BG = (122, 31, 31)
_CITED = (255, 64, 64)
_TRIAGE_COLOURS = {"CRITICAL": (176, 0, 32), "URGENT": (211, 84, 0), "ROUTINE": (46, 125, 50)}


def contact_sheet(
    seq: FrameSequence, *, thumb: int = 128, columns: int = 12, max_per_segment: int = 24,
    cited: Sequence[int] = (), banner: str = "", labels: Mapping[int, str] | None = None,
) -> Image.Image:
    """One band per segment: its table line (wrapped, whole), then up to `max_per_segment`
    frames (evenly sampled), each with its frame index.

    `banner` (the AI notice and triage) heads the sheet; `cited` frames are always shown,
    framed in red and marked "cited" (or with `labels[frame]`, e.g. "S7 I271": the series
    and image a viewer shows)."""
    line_h = 18
    banner_h = 30 if banner else 0
    label_font, index_font = _font(14), _font(11)
    width = columns * thumb
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    wanted = {int(f) for f in cited if 0 <= f < seq.frame_count}
    bands = []
    for seg in seq.segments:
        count = seg.frame_count - seg.padded_frames
        sampled = np.linspace(seg.frame_start, seg.frame_start + count - 1,
                              min(count, max_per_segment)).round().astype(int)
        mine = [f for f in wanted if seg.frame_start <= f < seg.frame_stop]
        shown = np.unique(np.concatenate([sampled, np.array(mine, dtype=int)]))
        rows = -(-len(shown) // columns)
        # The whole table line, wrapped: a label cut at the edge hides what it rests on.
        title = _wrap(segment_line(seg).replace("–", "-"), measure, label_font, width - 8)
        bands.append((title, shown, rows))
    height = banner_h + (sum(4 + line_h * len(t) + rows * thumb for t, _, rows in bands)
                         or thumb)
    sheet = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    if banner:
        level = next((word for word in _TRIAGE_COLOURS if word in banner.upper()), "")
        draw.rectangle((0, 0, width, banner_h - 1), fill=_TRIAGE_COLOURS.get(level, _BANNER_BG))
        draw.text((6, 7), banner, fill=(255, 255, 255), font=_font(15))
    y = banner_h
    for title, shown, rows in bands:
        for line in title:
            draw.text((4, y + 3), line, fill=_LABEL, font=label_font)
            y += line_h
        y += 4
        for k, frame in enumerate(shown):
            x0, y0 = (k % columns) * thumb, y + (k // columns) * thumb
            tile = Image.fromarray(seq.frames[frame]).resize((thumb, thumb),
                                                             Image.Resampling.BOX)
            sheet.paste(tile, (x0, y0))
            # On a dark tab, readable on white frames too (inverted-grey PET).
            box = draw.textbbox((x0 + 3, y0 + 2), str(frame), font=index_font)
            draw.rectangle((box[0] - 2, box[1] - 1, box[2] + 2, box[3] + 1), fill=_BACKGROUND)
            draw.text((x0 + 3, y0 + 2), str(frame), fill=_INDEX, font=index_font)
            if int(frame) in wanted:
                draw.rectangle((x0, y0, x0 + thumb - 1, y0 + thumb - 1), outline=_CITED,
                               width=3)
                mark = (labels or {}).get(int(frame), "cited")
                draw.text((x0 + 4, y0 + thumb - 16), mark, fill=_CITED, font=index_font)
        y += rows * thumb
    return sheet


def write_mp4(seq: FrameSequence, path: Path, *, fps: int = 8, label: bool = True) -> Path:
    """An H.264 MP4 of every frame, each captioned with its segment's table line."""
    if seq.frame_count == 0:
        raise FrameError(f"{path}: an empty frame sequence cannot become a video")
    height, width = seq.frames.shape[1:3]
    # yuv420p needs even dimensions.
    height, width = height - height % 2, width - width % 2
    font = _font(max(10, width // 40))
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "20", "preset": "veryfast"}
        for seg in seq.segments:
            # Series number and plane first: what a reader finds in the PACS.
            where = series_name(seg).replace(f' "{seg.series_description}"', "")
            caption = f"{where}, {seg.label}, {seg.mapping}" + (" PRIOR" if seg.is_prior
                                                               else "")
            for t in range(seg.frame_start, seg.frame_stop):
                image = Image.fromarray(seq.frames[t, :height, :width])
                if label:
                    draw = ImageDraw.Draw(image)
                    text = f"{t} · {caption}"
                    # On a dark tab: readable on white frames (inverted-grey PET) too.
                    draw.rectangle(draw.textbbox((6, 4), text, font=font), fill=_BACKGROUND)
                    draw.text((6, 4), text, fill=_LABEL, font=font)
                frame = av.VideoFrame.from_ndarray(np.asarray(image), format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
