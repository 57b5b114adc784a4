"""A study as stacks: scan, exclude, split into coherent stacks, label each stack."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

from pydicom.dataset import Dataset

from radraft.core.errors import FrameError
from radraft.reporting.frames.classify import (
    acquisition_seconds,
    derived_kind,
    exclusion_reason,
    mr_sequence,
)
from radraft.reporting.frames.geometry import Slice, Stack, build_stacks, slices_of
from radraft.reporting.frames.headers import HeaderValues
from radraft.reporting.frames.loading import Instance, scan
from radraft.reporting.frames.phase import HeaderContrast, Label, header_phase
from radraft.reporting.frames.suv import suv_scale
from radraft.reporting.sequence import ExcludedSeries


@dataclass(slots=True)
class LabelledStack:
    stack: Stack
    study_uid: str
    series_uid: str
    study_date: str
    modality: str
    description: str
    body_part: str
    label: Label | None  # None: decide from the pixels (CT phase, `phase_with_image`)
    is_prior: bool
    series_number: int
    contrast: HeaderContrast | None = None  # CT: what the header says about contrast
    derived: str = ""  # "MPR", "MIP", "SECONDARY"...: not an original acquisition
    frame_of_reference: str = ""
    # Set by assembly when two stacks would read alike: "stack 2 of 3", the series UID.
    tell_apart: str = ""
    suv: bool = False  # PET: the slices' rescale gives SUVbw (see `suv.py`)

    @property
    def header(self) -> Dataset:
        return self.stack.first.header


@dataclass(slots=True)
class ScannedStudy:
    stacks: list[LabelledStack] = field(default_factory=list)
    excluded: list[ExcludedSeries] = field(default_factory=list)
    first_header: Dataset | None = None


def _text(ds: Dataset, key: str) -> str:
    return str(ds.get(key, "") or "").strip().strip("\x00").strip()


# Derived CT images that still show HU anatomy (a contrast phase applies to them).
ANATOMIC_DERIVED = ("", "secondary", "MPR", "MIP", "MinIP", "subtraction",
                     "volume rendering", "projection")

# What `exclusion_reason` reads: equal raw values, equal decision.
_EXCLUSION_KEYS = ("Modality", "Manufacturer", "SeriesDescription", "ImageType", "SOPClassUID",
                   "BurnedInAnnotation")


def _exclusion(inst: Instance, has_pixels: bool) -> str | None:
    return exclusion_reason(inst.header, has_pixels)


def _truncated(inst: Instance) -> str | None:
    """Why a native file's pixels cannot all be read (cut short), or None. Checked here, so
    one broken file is left out with its reason instead of failing the study later."""
    if inst.path is None or inst.pixel_offset is None:
        return None
    try:
        expected = (inst.rows * inst.columns * inst.samples * inst.stored_dtype.itemsize
                    * inst.frame_count)
        available = min(inst.pixel_length, inst.path.stat().st_size - inst.pixel_offset)
    except (FrameError, OSError):
        return None  # decided where the pixels are read, with its own error
    if available >= expected:
        return None
    return f"Pixel Data truncated: {max(available, 0)} of {expected} bytes ({inst.source})"


def _uid(inst: Instance, key: str) -> str:
    return str(inst.get(key, "") or "").strip().strip("\x00").strip()


def _series_number(ds: Dataset) -> int:
    try:
        return int(ds.get("SeriesNumber", 0) or 0)
    except (TypeError, ValueError):
        return 0


def scan_study(
    source: Path | Sequence[Dataset], *, is_prior: bool,
    progress: Callable[[str], None] | None = None,
) -> ScannedStudy:
    values = HeaderValues()
    instances, not_dicom = scan(source, progress, values)
    if progress:
        progress(f"{'prior' if is_prior else 'study'}: {len(instances)} DICOM objects read")
    result = ScannedStudy()
    for path in not_dicom:
        result.excluded.append(ExcludedSeries("", "", Path(path).name, "", "not a DICOM file", 1))
    by_series: dict[tuple[str, str], list[Instance]] = defaultdict(list)
    dropped: dict[tuple[str, str, str], list[Instance]] = defaultdict(list)
    for inst in instances:
        key = (_uid(inst, "StudyInstanceUID"), _uid(inst, "SeriesInstanceUID"))
        has_pixels = inst.has_pixels
        # The header is parsed (fast scans) only for the first instance of each decision.
        reason = values.derived(inst, _EXCLUSION_KEYS, has_pixels,
                                partial(_exclusion, inst, has_pixels)) or _truncated(inst)
        if reason is None:
            by_series[key].append(inst)
        else:
            dropped[(*key, reason)].append(inst)
    for (study_uid, series_uid, reason), members in dropped.items():
        ds = members[0].header
        result.excluded.append(ExcludedSeries(
            study_uid, series_uid, _text(ds, "SeriesDescription"), _text(ds, "Modality"),
            reason, len(members)))
    headers = [members[0].header for members in by_series.values()]
    result.first_header = headers[0] if headers else (instances[0].header if instances else None)
    for (study_uid, series_uid), members in by_series.items():
        ds = members[0].header
        modality = _text(ds, "Modality").upper()
        slices, problems = _slices(members)
        derived = derived_kind(ds)
        if derived == "projection":
            # Projections (MR/CT angiography) are views at angles: one run in their own
            # order, not slices to sort by position.
            slices = [replace(sl, position=None, orientation=None) for sl in slices]
        label: Label | None
        contrast: HeaderContrast | None = None
        if modality == "CT" and derived not in ANATOMIC_DERIVED:
            label = Label(f"{derived} map (derived)", "parameters")
        elif modality == "CT":
            label, contrast = header_phase(ds)
        elif modality == "MR":
            label = mr_sequence(ds)
        else:
            label = Label(_text(ds, "SeriesDescription") or modality, "description")
        stacks, more = build_stacks(slices, "" if derived == "projection" else modality)
        for problem in [*problems, *(_Problem(text, 1) for text in more)]:
            result.excluded.append(ExcludedSeries(
                study_uid, series_uid, _text(ds, "SeriesDescription"), modality,
                problem.reason, problem.count))
        for stack in stacks:
            labelled = LabelledStack(
                stack, study_uid, series_uid, _text(ds, "StudyDate"), modality,
                _text(ds, "SeriesDescription"), _text(ds, "BodyPartExamined"), label, is_prior,
                _series_number(ds), contrast, derived,
                _text(ds, "FrameOfReferenceUID"))
            if modality == "PT":
                _to_suv(labelled, ds)
            result.stacks.append(labelled)
    tell_apart(result.stacks)
    result.stacks.sort(key=lambda s: (
        s.series_number, acquisition_seconds(s.header) or 0.0, s.series_uid,
        s.stack.part[0] if s.stack.part else 0))
    return result


@dataclass(frozen=True, slots=True)
class _Problem:
    reason: str
    count: int


def _slices(members: list[Instance]) -> tuple[list[Slice], list[_Problem]]:
    """Every frame of the series' instances; an object whose geometry cannot be read is
    left out with the reason (the file named), never failing the study."""
    slices: list[Slice] = []
    problems: list[_Problem] = []
    for inst in members:
        try:
            slices.extend(slices_of(inst))
        except FrameError as exc:
            problems.append(_Problem(f"unreadable geometry: {exc}", 1))
    return slices, problems


def stack_notes(stack: LabelledStack) -> tuple[str, ...]:
    """What the segment table says besides the label, to map a segment back to PACS."""
    notes = []
    if stack.stack.part is not None:
        part, parts, gap = stack.stack.part
        text = f"part {part} of {parts} of the series"
        if part > 1:
            text += f", after a gap of {gap:.0f} mm"
        notes.append(text)
    if stack.derived:
        notes.append(f"derived ({stack.derived})")
    if stack.stack.order_note:
        notes.append(stack.stack.order_note)
    if stack.tell_apart:
        notes.append(stack.tell_apart)
    return tuple(notes)


def tell_apart(stacks: list[LabelledStack]) -> None:
    """Stacks that would read alike in the table (same study, series number, description
    and plane) get "stack k of n" (one series) or the series UID's tail (two series)."""
    alike: dict[tuple[str, int, str, str, int], list[LabelledStack]] = defaultdict(list)
    for st in stacks:
        part = st.stack.part[0] if st.stack.part else 0
        alike[(st.study_uid, st.series_number, st.description.lower(), st.stack.plane,
               part)].append(st)
    for group in alike.values():
        if len(group) < 2:
            continue
        uids = {st.series_uid for st in group}
        for index, st in enumerate(group, start=1):
            if len(uids) == 1:
                st.tell_apart = f"stack {index} of {len(group)} of the series"
            else:
                st.tell_apart = f"series UID …{st.series_uid[-8:]}"


def _to_suv(stack: LabelledStack, ds: Dataset) -> None:
    """Rescale a PET stack's slices to SUVbw where the header allows, and label it."""
    slices = stack.stack.slices
    scale = suv_scale(ds, [(str(sl.inst.get("AcquisitionDate", "") or "").strip(),
                            str(sl.inst.get("AcquisitionTime", "") or "").strip())
                           for sl in slices])
    if scale.factors is None:
        units = _text(ds, "Units") or "values"
        stack.label = Label("PET, SUV not computable", "header",
                            f"{scale.reason}; shown as 1st-99th percentile of {units}")
        return
    stack.stack.slices = [replace(sl, slope=sl.slope * k, intercept=sl.intercept * k)
                          for sl, k in zip(slices, scale.factors, strict=True)]
    stack.suv = True
    stack.label = Label("PET SUVbw", "header", scale.evidence)
