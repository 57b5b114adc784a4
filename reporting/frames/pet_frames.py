"""PET segments beyond the slices: which to add (rotating MIP, CT-PET fusion), their
segments and frames. The slices themselves are rendered like any stack, on the fixed SUV
scale (`windows.SUV_MAPPING`) when the header gives SUVbw."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import numpy.typing as npt

from radraft.core.recipe import FrameRecipe
from radraft.reporting.frames.pet_render import (
    MIP_VIEWS,
    CtFrames,
    FusionPlan,
    Target,
    fusion_indices,
    nearest_ct,
    plan_fusion,
    render_fusion,
    render_mip,
)
from radraft.reporting.frames.stack_render import Candidate, StackRenderer
from radraft.reporting.frames.study import LabelledStack, stack_notes
from radraft.reporting.frames.windows import SUV_MAPPING, Mapping
from radraft.reporting.sequence import FrameRef, Segment

_MIN_MIP_SLICES = 8
MIN_MIP_VIEWS = 8  # fewer does not read as a rotation (45° steps)
# One fused frame per this many PET slices in the overlap (the PET and CT slices are
# shown in full beside it; the fused levels show where each finding lies).
FUSION_EVERY = 4
# False: PET slices only, no MIP or fusion (bench.frames measures what the views cost).
EXTRA_VIEWS = True


def pet_candidates(stacks: list[LabelledStack], candidates: list[Candidate],
                   notes: list[str]) -> list[Candidate]:
    """The PET slice candidates get their fixed scale and notes; a rotating MIP and a
    fusion candidate are added per PET stack where they can be made (else a note)."""
    extra: list[Candidate] = []
    for index, cand in enumerate(candidates):
        pet = cand.stack
        if pet.modality != "PT" or cand.kind != "stack" or pet.stack.plane != "axial":
            continue
        plan = plan_fusion(pet, stacks)
        own: tuple[str, ...] = () if pet.suv else (
            "SUV not computable: percentile 1-99 of the stored values, inverted grey",)
        if plan.ct is None:
            notes.append(plan.note)
            own += (plan.note,)
        candidates[index] = replace(cand, mapping=SUV_MAPPING if pet.suv else None,
                                    notes=cand.notes + own)
        if not EXTRA_VIEWS:
            continue
        if len(pet.stack.slices) >= _MIN_MIP_SLICES:
            extra.append(Candidate(pet, (), kind="mip", want=MIP_VIEWS,
                                   mapping=SUV_MAPPING if pet.suv else None))
        if plan.ct is not None:
            extra.append(Candidate(pet, (), kind="fusion",
                                   want=max(2, -(-len(plan.pet_indices) // FUSION_EVERY)),
                                   partner=plan.ct, pet_indices=plan.pet_indices,
                                   mapping=SUV_MAPPING if pet.suv else None,
                                   notes=(plan.note,)))
    _coverage(candidates)
    return extra


def _coverage(candidates: list[Candidate]) -> None:
    """In a study with PET, every axial PET and CT segment states the patient z it covers,
    so the reader (and the model) sees when PET and CT show different parts of the body."""
    with_pet = {c.stack.study_uid for c in candidates if c.stack.modality == "PT"}
    for index, cand in enumerate(candidates):
        stack = cand.stack
        if (stack.study_uid not in with_pet or stack.modality not in ("PT", "CT")
                or stack.stack.plane != "axial"):
            continue
        z = [sl.position[2] for sl in stack.stack.slices if sl.position is not None]
        if z:
            candidates[index] = replace(
                cand, notes=(*cand.notes, f"covers z {max(z):.0f} to {min(z):.0f} mm"))


def ct_frames(frames: npt.NDArray[np.uint8], segments: list[Segment], refs: list[FrameRef],
              ct: LabelledStack) -> CtFrames:
    """Which frames already show each CT slice of `ct` in the abdomen window."""
    where: dict[tuple[str, int | None], tuple[int, int]] = {}
    for seg in segments:
        windows = seg.mapping.split("+")
        if seg.series_uid != ct.series_uid or seg.is_prior or "abdomen" not in windows:
            continue
        channel = windows.index("abdomen") if len(windows) == 3 else 0
        for f in range(seg.frame_start, seg.frame_stop - seg.padded_frames):
            for source in refs[f].sources:
                where.setdefault(source, (f, channel))
    return CtFrames(frames, where)


def render_extra(cand: Candidate, renderer: StackRenderer, start: int, index: int,
                 recipe: FrameRecipe, target: Target, shown: CtFrames | None = None,
                 ) -> tuple[Segment, list[FrameRef]]:
    """A MIP or fusion candidate's segment and frame references; its frames are written
    through `target(t)` (frame `start + t` of the output, populated and ready)."""
    pet = cand.stack
    slices = pet.stack.slices
    mapping = cand.mapping or _percentile(cand, renderer)
    size = recipe.frame_size
    if cand.kind == "mip":
        views = cand.frames
        render_mip(pet, mapping, renderer.sample, views, size, target, renderer.pool)
        centre = slices[len(slices) // 2]
        refs = [FrameRef(pet.study_uid, pet.series_uid, centre.inst.sop_uid,
                         centre.inst.sop_class, centre.frame_number, pet.is_prior)] * views
        plane = "rotating MIP"
        notes: tuple[str, ...] = (
            f"maximum intensity projection of all {len(slices)} slices, {views} "
            f"views {360 / max(views, 1):.1f}° apart turning from the front "
            "towards the patient's left",)
        mapping_name = mapping.name
    else:
        ct = cand.partner
        assert ct is not None
        plan = FusionPlan(ct, "", cand.pet_indices)
        chosen = fusion_indices(plan, cand.frames)
        render_fusion(pet, plan, mapping, renderer.read_one, chosen, size, target,
                      renderer.pool, shown or CtFrames(renderer.out, {}))
        refs = []
        for i in chosen:
            ct_slice = ct.stack.slices[nearest_ct(plan, pet, i)]
            sl = slices[i]
            refs.append(FrameRef(pet.study_uid, pet.series_uid, sl.inst.sop_uid,
                                 sl.inst.sop_class, sl.frame_number, pet.is_prior,
                                 ((sl.inst.sop_uid, sl.frame_number),
                                  (ct_slice.inst.sop_uid, ct_slice.frame_number))))
        plane = "axial fusion"
        notes = (*cand.notes, f"fused at {len(chosen)} levels evenly spaced over the "
                 f"{len(cand.pet_indices)} PET slices within the CT")
        scale = "SUV 0-10" if pet.suv else "percentile 1-99"
        mapping_name = f"CT abdomen window + PET {scale} hot overlay"
    padded = cand.frames - len(refs)
    last = renderer.out[start + len(refs) - 1]
    for t in range(len(refs), cand.frames):
        target(t)[...] = last
    refs.extend([refs[-1]] * padded)
    label = pet.label.text if pet.label else "PET"
    segment = Segment(
        index=index, frame_start=start, frame_stop=start + cand.frames,
        study_uid=pet.study_uid, series_uid=pet.series_uid, study_date=pet.study_date,
        modality=pet.modality, series_description=pet.description, label=label, plane=plane,
        mapping=mapping_name, combine="single",
        slices_in_stack=len(slices), is_prior=pet.is_prior, body_part=pet.body_part,
        padded_frames=padded, label_source=pet.label.source if pet.label else "",
        series_number=pet.series_number,
        label_evidence=pet.label.evidence if pet.label else "",
        notes=stack_notes(pet) + notes)
    return segment, refs


def _percentile(cand: Candidate, renderer: StackRenderer) -> Mapping:
    keys = list(range(len(cand.stack.stack.slices)))
    base = renderer.mapping_of(replace(cand, kind="stack", mapping=None), keys)[0]
    return replace(base, invert=True)
