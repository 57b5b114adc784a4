"""The segment table as JSON rows and as prompt text."""

from __future__ import annotations

from typing import Any

from radraft.reporting.frames.windows import CT_WINDOWS
from radraft.reporting.sequence import FrameSequence, Segment

_COMBINE_WORDS = {"average": "slab average", "mip": "MIP", "sample": "sampled"}


def _date(value: str) -> str:
    value = value.replace(".", "")
    value = value.replace(".", "")  # ACR-NEMA style dates: 1997.04.24
    return f"{value[0:4]}-{value[4:6]}-{value[6:8]}" if len(value) == 8 else value or "date ?"


def _mapping_text(mapping: str) -> str:
    parts = mapping.split("+")
    if all(p in CT_WINDOWS for p in parts):
        if len(parts) == 3:
            return f"{'/'.join(parts)} windows as R/G/B"
        return f"{mapping} window"
    return mapping


def segment_line(seg: Segment) -> str:
    """'frames 0–63: CT abdomen, portal venous, 2026-11-20, abdomen window'."""
    what = f"{seg.modality} {seg.body_part.lower()}".rstrip()
    label = seg.label + (" (guessed from the image)" if seg.label_source == "image" else "")
    parts = [what, label, _date(seg.study_date), _mapping_text(seg.mapping)]
    if seg.plane not in ("axial", ""):
        parts.insert(2, seg.plane)
    if seg.combine in _COMBINE_WORDS:
        per = seg.slices_in_stack / max(seg.frame_count - seg.padded_frames, 1)
        parts.append(f"{_COMBINE_WORDS[seg.combine]} of {seg.slices_in_stack} slices "
                     f"(~{per:.1f} per frame)")
    if seg.is_prior:
        parts.append("PRIOR")
    if seg.padded_frames:
        parts.append(f"last frame repeated {seg.padded_frames}×")
    return f"frames {seg.frame_start}–{seg.frame_stop - 1}: " + ", ".join(parts)


def segment_table_text(seq: FrameSequence) -> str:
    """One line per segment, then one per excluded series."""
    lines = [segment_line(seg) for seg in seq.segments]
    for ex in seq.excluded:
        name = ex.series_description or ex.series_uid or "?"
        lines.append(f"not shown: {ex.modality or '?'} {name!s} ({ex.instance_count} "
                     f"objects): {ex.reason}")
    return "\n".join(lines)


def segment_table_json(seq: FrameSequence) -> list[dict[str, Any]]:
    """One row per segment with its frames' source instances, then the excluded series."""
    rows: list[dict[str, Any]] = []
    for seg in seq.segments:
        refs = seq.refs[seg.frame_start:seg.frame_stop]
        rows.append({
            "kind": "segment", "index": seg.index, "frame_start": seg.frame_start,
            "frame_stop": seg.frame_stop, "study_uid": seg.study_uid,
            "series_uid": seg.series_uid, "study_date": seg.study_date,
            "modality": seg.modality, "series_description": seg.series_description,
            "label": seg.label, "plane": seg.plane, "mapping": seg.mapping,
            "combine": seg.combine, "slices_in_stack": seg.slices_in_stack,
            "is_prior": seg.is_prior, "body_part": seg.body_part,
            "padded_frames": seg.padded_frames,
            "label_source": seg.label_source, "text": segment_line(seg),
            "frames": [{"sop_instance_uid": r.sop_instance_uid, "frame_number": r.frame_number,
                        "sources": [list(s) for s in r.sources]} for r in refs],
        })
    for ex in seq.excluded:
        rows.append({
            "kind": "excluded", "study_uid": ex.study_uid, "series_uid": ex.series_uid,
            "series_description": ex.series_description, "modality": ex.modality,
            "reason": ex.reason, "instance_count": ex.instance_count,
        })
    return rows
