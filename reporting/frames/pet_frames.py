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
    FusionPlan,
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
        if len(pet.stack.slices) >= _MIN_MIP_SLICES:
            extra.append(Candidate(pet, (), kind="mip", want=MIP_VIEWS,
                                   mapping=SUV_MAPPING if pet.suv else None))
        if plan.ct is not None:
            extra.append(Candidate(pet, (), kind="fusion", want=len(plan.pet_indices),
                                   partner=plan.ct, pet_indices=plan.pet_indices,
                                   mapping=SUV_MAPPING if pet.suv else None,
                                   notes=(plan.note,)))
    return extra


def render_extra(cand: Candidate, renderer: StackRenderer, start: int, index: int,
                 recipe: FrameRecipe) -> tuple[Segment, list[FrameRef],
                                               list[npt.NDArray[np.uint8]]]:
    """A MIP or fusion candidate's segment, frame references and frames."""
    pet = cand.stack
    slices = pet.stack.slices
    mapping = cand.mapping or _percentile(cand, renderer)
    size = recipe.frame_size
    if cand.kind == "mip":
        images = render_mip(pet, mapping, renderer.sample, cand.frames, size)
        centre = slices[len(slices) // 2]
        refs = [FrameRef(pet.study_uid, pet.series_uid, centre.inst.sop_uid,
                         centre.inst.sop_class, centre.frame_number, pet.is_prior)] * len(images)
        plane = "rotating MIP"
        notes: tuple[str, ...] = (
            f"maximum intensity projection of all {len(slices)} slices, {len(images)} "
            f"views {360 / max(len(images), 1):.1f}° apart turning from the front "
            "towards the patient's left",)
        mapping_name = mapping.name
    else:
        ct = cand.partner
        assert ct is not None
        plan = FusionPlan(ct, "", cand.pet_indices)
        chosen = fusion_indices(plan, cand.frames)
        images = render_fusion(pet, plan, mapping, renderer.sample, chosen, size)
        refs = []
        for i in chosen:
            ct_slice = ct.stack.slices[nearest_ct(plan, pet, i)]
            sl = slices[i]
            refs.append(FrameRef(pet.study_uid, pet.series_uid, sl.inst.sop_uid,
                                 sl.inst.sop_class, sl.frame_number, pet.is_prior,
                                 ((sl.inst.sop_uid, sl.frame_number),
                                  (ct_slice.inst.sop_uid, ct_slice.frame_number))))
        plane = "axial fusion"
        notes = cand.notes
        scale = "SUV 0-10" if pet.suv else "percentile 1-99"
        mapping_name = f"CT abdomen window + PET {scale} hot overlay"
    padded = cand.frames - len(images)
    refs.extend([refs[-1]] * padded)
    images.extend([images[-1]] * padded)
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
    return segment, refs, images


def _percentile(cand: Candidate, renderer: StackRenderer) -> Mapping:
    keys = list(range(len(cand.stack.stack.slices)))
    base = renderer.mapping_of(replace(cand, kind="stack", mapping=None), keys)[0]
    return replace(base, invert=True)
