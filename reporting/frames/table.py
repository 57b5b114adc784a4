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


def _label_text(seg: Segment, evidence: bool = True) -> str:
    if not evidence and seg.label_evidence:
        return f"{seg.label} (as above)"
    if seg.label_source in ("header", "image", "header+image") and seg.label_evidence:
        return f"{seg.label} ({seg.label_source}: {seg.label_evidence})"
    if seg.label_source == "" and seg.label_evidence:
        return f"{seg.label} ({seg.label_evidence})"
    return seg.label


def series_name(seg: Segment) -> str:
    """'CT series 3 "ABDOMEN ARTERIAL" axial': what a reader finds in the PACS."""
    number = f" series {seg.series_number}" if seg.series_number is not None else ""
    description = f' "{seg.series_description}"' if seg.series_description else ""
    body = f" {seg.body_part.lower()}" if seg.body_part else ""
    return f"{seg.modality}{body}{number}{description} {seg.plane}".rstrip()


def segment_line(seg: Segment, *, evidence: bool = True) -> str:
    """'frames 0–63: CT abdomen series 3 "PV 2mm" axial, portal venous, 2026-11-20, ...'.
    `evidence=False`: the label's grounds were given on an earlier line ("as above")."""
    parts = [series_name(seg), _label_text(seg, evidence), _date(seg.study_date),
             _mapping_text(seg.mapping)]
    if seg.combine in _COMBINE_WORDS:
        per = seg.slices_in_stack / max(seg.frame_count - seg.padded_frames, 1)
        parts.append(f"{_COMBINE_WORDS[seg.combine]} of {seg.slices_in_stack} slices "
                     f"(~{per:.1f} per frame)")
    parts.extend(seg.notes)
    if seg.is_prior:
        parts.append("PRIOR")
    if seg.padded_frames:
        parts.append(f"last frame repeated {seg.padded_frames}×")
    return f"frames {seg.frame_start}–{seg.frame_stop - 1}: " + ", ".join(parts)


def segment_table_text(seq: FrameSequence) -> str:
    """One line per segment (a series' label grounds on its first line only, so the
    prompt's table budget goes to segments), the notes, then one per excluded series."""
    seen: set[tuple[str, str, str]] = set()
    lines = []
    for seg in seq.segments:
        key = (seg.series_uid, seg.label, seg.label_evidence)
        lines.append(segment_line(seg, evidence=key not in seen))
        seen.add(key)
    lines.extend(f"note: {note}" for note in seq.metadata.get("notes", []))
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
            "label_source": seg.label_source, "label_evidence": seg.label_evidence,
            "series_number": seg.series_number, "notes": list(seg.notes),
            "text": segment_line(seg),
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
