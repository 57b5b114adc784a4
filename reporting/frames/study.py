"""A study as stacks: scan, exclude, split into coherent stacks, label each stack."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from pydicom.dataset import Dataset

from radraft.reporting.frames.classify import (
    Label,
    acquisition_seconds,
    ct_phase,
    exclusion_reason,
    has_contrast_agent,
    mr_sequence,
)
from radraft.reporting.frames.geometry import Stack, build_stacks, slices_of
from radraft.reporting.frames.headers import HeaderValues
from radraft.reporting.frames.loading import Instance, scan
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
    label: Label | None  # None: decide from the pixels (CT phase fallback)
    is_prior: bool
    series_number: int

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


# What `exclusion_reason` reads: equal raw values, equal decision.
_EXCLUSION_KEYS = ("Modality", "Manufacturer", "SeriesDescription", "ImageType", "SOPClassUID",
                   "BurnedInAnnotation")


def _exclusion(inst: Instance, has_pixels: bool) -> str | None:
    return exclusion_reason(inst.header, has_pixels)


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
                                partial(_exclusion, inst, has_pixels))
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
    # Timing reference: the first of two or more contrast series.
    contrast_times = [t for ds in headers if has_contrast_agent(ds)
                      and (t := acquisition_seconds(ds)) is not None]
    first_contrast = min(contrast_times) if len(contrast_times) >= 2 else None
    for (study_uid, series_uid), members in by_series.items():
        ds = members[0].header
        modality = _text(ds, "Modality").upper()
        slices = [sl for inst in members for sl in slices_of(inst)]
        label: Label | None
        if modality == "CT":
            label = ct_phase(ds, first_contrast)
        elif modality == "MR":
            label = mr_sequence(ds)
        else:
            label = Label(_text(ds, "SeriesDescription") or modality, "description")
        for stack in build_stacks(slices, modality):
            result.stacks.append(LabelledStack(
                stack, study_uid, series_uid, _text(ds, "StudyDate"), modality,
                _text(ds, "SeriesDescription"), _text(ds, "BodyPartExamined"), label, is_prior,
                _series_number(ds)))
    result.stacks.sort(key=lambda s: (
        s.series_number, acquisition_seconds(s.header) or 0.0, s.series_uid))
    return result
