"""`build_frame_sequence`: a study and its priors as one grounded frame sequence."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

from radraft.core.errors import FrameError
from radraft.core.recipe import FrameRecipe
from radraft.reporting.frames.budget import TokenBudget, frame_cap, split_current_prior
from radraft.reporting.frames.output import FrameBuffer
from radraft.reporting.frames.pet_frames import (
    MIN_MIP_VIEWS,
    ct_frames,
    pet_candidates,
    render_extra,
)
from radraft.reporting.frames.phase_image import phase_from_pixels, phase_sample_keys
from radraft.reporting.frames.stack_render import Candidate, StackRenderer, slabs
from radraft.reporting.frames.study import (
    ANATOMIC_DERIVED,
    LabelledStack,
    ScannedStudy,
    scan_study,
    stack_notes,
)
from radraft.reporting.frames.windows import Mapping, auto_windows, ct_window
from radraft.reporting.sequence import (
    Combine,
    ExcludedSeries,
    FrameRef,
    FrameSequence,
    Segment,
)

StudySource = Path | Sequence[Dataset]


def _workers() -> int:
    # Decoding, lookups, resizing and copies release the GIL; beyond ~8 threads the
    # Python glue between them does not scale.
    return max(1, min(8, os.cpu_count() or 1))


def _ct_windows(recipe: FrameRecipe, stack: LabelledStack) -> list[tuple[str, ...]]:
    names = list(recipe.windows)
    if names == ["auto"] or not names:
        where = (f"{stack.body_part} {stack.description} "
                 f"{stack.header.get('StudyDescription', '')} "
                 f"{stack.header.get('ProtocolName', '')}")
        positions = stack.stack.positions
        extent = max(positions) - min(positions) if stack.stack.normal is not None else 0.0
        chosen, _region = auto_windows(where, extent)
        names = list(chosen)
    for name in names:
        ct_window(name)  # unknown names fail early, naming the window
    if recipe.pack_windows and len(names) == 3:
        return [tuple(names)]
    if recipe.pack_windows and recipe.windows != ["auto"]:
        raise FrameError(f"pack_windows needs exactly 3 windows, the recipe has {names}")
    return [(name,) for name in names]


def _included(recipe: FrameRecipe, stack: LabelledStack) -> bool:
    if not recipe.series_include:
        return True
    text = f"{stack.label.text if stack.label else ''} {stack.description}"
    return any(re.search(p, text, re.I) for p in recipe.series_include)


def _candidates(recipe: FrameRecipe, studies: list[ScannedStudy],
                excluded: list[ExcludedSeries]) -> list[Candidate]:
    out: list[Candidate] = []
    for scanned in studies:
        for stack in scanned.stacks:
            if not _included(recipe, stack):
                excluded.append(ExcludedSeries(
                    stack.study_uid, stack.series_uid, stack.description, stack.modality,
                    "not in profile series_include", len(stack.stack.slices)))
                continue
            colour = stack.stack.first.samples == 3
            if stack.modality == "CT" and not colour and stack.derived in ANATOMIC_DERIVED:
                out.extend(Candidate(stack, w) for w in _ct_windows(recipe, stack))
            else:
                out.append(Candidate(stack, ()))
    return out


def _enough_mip_views(candidates: list[Candidate]) -> None:
    """A rotating MIP needs about 8 views to rotate; under a tight budget they are taken,
    two at a time, from the segment with the most frames (the total stays the same)."""
    for mip in (c for c in candidates if c.kind == "mip"):
        wanted = min(MIN_MIP_VIEWS, mip.size)
        while mip.frames < wanted:
            donor = max((c for c in candidates if c is not mip), key=lambda c: c.frames,
                        default=None)
            if donor is None or donor.frames <= 2:
                break
            donor.frames -= 2
            mip.frames += 2


def _mapping_name(cand: Candidate, mappings: list[Mapping]) -> str:
    if cand.windows:
        return "+".join(cand.windows)
    if cand.stack.stack.first.samples == 3:
        return "colour"
    return mappings[0].name


def build_frame_sequence(
    study: StudySource,
    *,
    priors: Sequence[StudySource] = (),
    recipe: FrameRecipe | None = None,
    max_frames: int | None = None,
    token_budget: TokenBudget | None = None,
    progress: Callable[[str], None] | None = None,
) -> FrameSequence:
    """Turn a study folder (or datasets) and its priors into one grounded frame sequence.

    `token_budget(height, width, frames_wanted)` returns how many frames of that size the
    model backend accepts (see `budget.qwen_token_budget`).
    """
    recipe = recipe or FrameRecipe()
    say = progress or (lambda _msg: None)
    current = scan_study(study, is_prior=False, progress=progress)
    prior_scans = [scan_study(p, is_prior=True, progress=progress) for p in priors]
    excluded = list(current.excluded)
    for scanned in prior_scans:
        excluded.extend(scanned.excluded)
    candidates = _candidates(recipe, [current, *prior_scans], excluded)
    notes: list[str] = []
    candidates += pet_candidates([s for sc in (current, *prior_scans) for s in sc.stacks],
                                 candidates, notes)
    if not candidates:
        reasons = "; ".join(sorted({e.reason for e in excluded}))
        raise FrameError(f"{_describe(study)}: no image series to turn into frames "
                         f"({len(excluded)} excluded: {reasons[:800]})")
    cap = frame_cap(recipe.max_frames, max_frames, token_budget, recipe.frame_size)
    cur = [c for c in candidates if not c.stack.is_prior]
    pri = [c for c in candidates if c.stack.is_prior]
    cur_frames, pri_frames = split_current_prior(
        cap, [c.size for c in cur], [c.size for c in pri], recipe.prior_share)
    for cand, frames in zip([*cur, *pri], [*cur_frames, *pri_frames], strict=True):
        cand.frames = frames
    _enough_mip_views([*cur, *pri])
    for cand in [*cur, *pri]:
        if cand.frames == 0:
            excluded.append(ExcludedSeries(
                cand.stack.study_uid, cand.stack.series_uid, cand.stack.description,
                cand.stack.modality, f"frame budget ({cap} frames) exhausted",
                len(cand.stack.stack.slices)))
    kept = [c for c in [*cur, *pri] if c.frames > 0]
    total = sum(c.frames for c in kept)
    size = recipe.frame_size
    say(f"{total} frames of {size}×{size} from {len(kept)} segments")
    segments: list[Segment] = []
    refs: list[FrameRef] = []
    by_stack: dict[tuple[int, str], list[Candidate]] = {}
    for cand in kept:
        by_stack.setdefault((id(cand.stack), cand.kind), []).append(cand)
    position = 0
    with ThreadPoolExecutor(_workers()) as pool:
        buffer = FrameBuffer((total, size, size, 3))
        renderer = StackRenderer(buffer, recipe, pool)
        done = 0
        # PET views after the stacks of their study: fusion reuses the CT's frames.
        groups = sorted(by_stack.values(),
                        key=lambda g: (g[0].stack.is_prior, g[0].kind != "stack"))
        for group in groups:
            stack = group[0].stack
            if group[0].kind != "stack":
                for cand in group:
                    shown = (ct_frames(buffer.frames, segments, refs, cand.partner)
                             if cand.partner is not None else None)
                    seg, seg_refs = render_extra(cand, renderer, position, len(segments),
                                                 recipe, renderer.target(position), shown)
                    segments.append(seg)
                    refs.extend(seg_refs)
                    position = seg.frame_stop
                    done += cand.frames
                continue
            n = len(stack.stack.slices)
            plans = [slabs(n, c.frames) for c in group]
            needed = sorted({i for plan in plans for slab in plan for i in (
                [slab[len(slab) // 2]] if recipe.combine == "sample" else slab)})
            if stack.label is None:
                stack.label = phase_from_pixels(
                    stack, renderer.sample(stack, phase_sample_keys(needed)))
            parts = []
            new_segments = []
            for cand, plan in zip(group, plans, strict=True):
                mappings = renderer.mapping_of(cand, needed)
                parts.append((cand, plan, position, mappings))
                seg, seg_refs = _segment(cand, plan, position, len(segments),
                                         _mapping_name(cand, mappings), recipe)
                new_segments.append(seg)
                segments.append(seg)
                refs.extend(seg_refs)
                position = seg.frame_stop

            def report(count: int) -> None:
                nonlocal done
                done += count
                say(f"frames {done}/{total}")

            renderer.render(stack, parts, report)
            pictures = buffer.frames
            for seg in new_segments:
                if seg.padded_frames:
                    last = seg.frame_stop - seg.padded_frames - 1
                    pictures[last + 1:seg.frame_stop] = pictures[last]
                    done += seg.padded_frames
        pictures = buffer.frames
    metadata = _metadata(current, prior_scans, recipe)
    metadata["notes"] = notes
    return FrameSequence(pictures, segments, refs, excluded, metadata)


def _segment(cand: Candidate, plan: list[list[int]], start: int, index: int, mapping: str,
             recipe: FrameRecipe) -> tuple[Segment, list[FrameRef]]:
    stack = cand.stack
    slices = stack.stack.slices
    refs = []
    for slab in plan:
        centre = slices[slab[len(slab) // 2]]
        used = [slab[len(slab) // 2]] if recipe.combine == "sample" else slab
        refs.append(FrameRef(
            stack.study_uid, stack.series_uid, centre.inst.sop_uid, centre.inst.sop_class,
            centre.frame_number, stack.is_prior,
            tuple((slices[i].inst.sop_uid, slices[i].frame_number) for i in used)))
    padded = cand.frames - len(plan)
    refs.extend([refs[-1]] * padded)
    combine: Combine = "single" if len(plan) == len(slices) else recipe.combine
    label = stack.label.text if stack.label else stack.modality
    segment = Segment(
        index=index, frame_start=start, frame_stop=start + cand.frames,
        study_uid=stack.study_uid, series_uid=stack.series_uid, study_date=stack.study_date,
        modality=stack.modality, series_description=stack.description, label=label,
        plane=stack.stack.plane, mapping=mapping, combine=combine,
        slices_in_stack=len(slices), is_prior=stack.is_prior, body_part=stack.body_part,
        padded_frames=padded, label_source=stack.label.source if stack.label else "",
        series_number=stack.series_number, label_evidence=stack.label.evidence
        if stack.label else "", notes=stack_notes(stack) + cand.notes)
    return segment, refs


def _describe(source: StudySource) -> str:
    return str(source) if isinstance(source, (str, Path)) else f"<{len(source)} datasets>"


def _metadata(current: ScannedStudy, priors: list[ScannedStudy],
              recipe: FrameRecipe) -> dict[str, Any]:
    ds = current.first_header

    def get(key: str) -> str:
        return str(ds.get(key, "") or "").strip() if ds is not None else ""

    return {
        "study_uid": get("StudyInstanceUID"),
        "study_date": get("StudyDate"),
        "accession": get("AccessionNumber"),
        "modality": get("Modality"),
        "study_description": get("StudyDescription"),
        "body_part": get("BodyPartExamined"),
        "patient_id": get("PatientID"),
        "patient_age": get("PatientAge"),
        "patient_sex": get("PatientSex"),
        "frame_size": recipe.frame_size,
        "priors": [
            {"study_uid": p.first_header.get("StudyInstanceUID", ""),
             "study_date": p.first_header.get("StudyDate", "")}
            for p in priors if p.first_header is not None],
    }
