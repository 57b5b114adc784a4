"""Shared pieces of the SR, TID 1500 and KOS builders: identity, references, evidence.

Pure functions of their inputs (no I/O, no database). A frame index becomes the instance
(and frame number) it was drawn from via `FrameSequence.refs`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from pydicom.dataset import Dataset
from pydicom.uid import UID

from radraft.core.errors import OutputBuildError
from radraft.core.settings import Settings
from radraft.core.types import JobKey
from radraft.core.uids import derived_uid
from radraft.reporting.facts import StudyFacts
from radraft.reporting.report_schema import DraftReport
from radraft.reporting.sequence import FrameRef, FrameSequence

MANUFACTURER = "radraft"
SOFTWARE_VERSION = "radraft 0.1.0"


@dataclass(frozen=True, slots=True)
class PredecessorRef:
    """The earlier draft SR that a re-draft replaces (Predecessor Documents Sequence)."""

    sop_instance_uid: str
    series_uid: str
    study_uid: str
    sop_class_uid: str = "1.2.840.10008.5.1.4.1.1.88.22"  # Enhanced SR


@dataclass(frozen=True, slots=True)
class CitedInstance:
    """One instance a finding cites, with the 1-based frames of a multi-frame object."""

    study_uid: str
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    is_prior: bool
    frame_numbers: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class BuildContext:
    """What every output object shares: identity, times, device, order, evidence."""

    settings: Settings
    job_key: JobKey
    model_name: str
    model_version: str
    now: datetime
    current_study_uid: str
    sources: tuple[Dataset, ...]
    charset: str | None
    facts: StudyFacts
    notes: tuple[str, ...] = ()  # statements after the AI notice (build_outputs `notes`)

    def uid(self, *purpose: str) -> str:
        """A UID fixed by the job key and `purpose` (a re-delivery replaces itself)."""
        return derived_uid(self.settings.site.uid_root, *self.job_key, *purpose)

    def series_uid(self, kind: str) -> str:
        """A series per study, profile and object kind: re-drafts land in the same series."""
        study_uid, _version, profile = self.job_key
        return derived_uid(self.settings.site.uid_root, study_uid, profile, kind, "series")

    @property
    def device_uid(self) -> str:
        """Device Observer UID of the model (TID 1004), fixed by name and version."""
        return derived_uid(
            self.settings.site.uid_root, "device", self.model_name, self.model_version
        )

    @property
    def local_now(self) -> datetime:
        return self.now.astimezone(ZoneInfo(self.settings.site.timezone))

    @property
    def timezone_offset(self) -> str:
        """Timezone Offset From UTC (0008,0201) as "+HHMM" / "-HHMM"."""
        return self.local_now.strftime("%z")


def cited_instances(report: DraftReport, seq: FrameSequence,
                    frames: Iterable[int] | None = None) -> list[CitedInstance]:
    """The distinct instances behind `frames` (default: every cited frame), in citation order."""
    wanted = report.cited_frames() if frames is None else list(frames)
    order: list[str] = []
    by_uid: dict[str, tuple[FrameRef, list[int]]] = {}
    for index in wanted:
        if not 0 <= index < seq.frame_count:
            raise OutputBuildError(
                f"a finding cites frame {index}, the sequence has {seq.frame_count} frames"
            )
        ref = seq.refs[index]
        if ref.sop_instance_uid not in by_uid:
            order.append(ref.sop_instance_uid)
            by_uid[ref.sop_instance_uid] = (ref, [])
        if ref.frame_number is not None and ref.frame_number not in by_uid[ref.sop_instance_uid][1]:
            by_uid[ref.sop_instance_uid][1].append(ref.frame_number)
    return [
        CitedInstance(
            study_uid=ref.study_uid, series_uid=ref.series_uid,
            sop_instance_uid=ref.sop_instance_uid, sop_class_uid=ref.sop_class_uid,
            is_prior=ref.is_prior, frame_numbers=tuple(sorted(numbers)),
        )
        for ref, numbers in (by_uid[uid] for uid in order)
    ]


def current_study_uid(seq: FrameSequence, sources: Sequence[Dataset]) -> str:
    """The study being reported: that of the non-prior frames, else of the first source."""
    for ref in seq.refs:
        if not ref.is_prior:
            return ref.study_uid
    if sources:
        return str(sources[0].StudyInstanceUID)
    raise OutputBuildError("no current-study frame and no source dataset: nothing to report on")


def minimal_reference(instance: CitedInstance) -> Dataset:
    """A header standing in for a cited instance whose dataset the caller did not pass."""
    ds = Dataset()
    ds.StudyInstanceUID = instance.study_uid
    ds.SeriesInstanceUID = instance.series_uid
    ds.SOPInstanceUID = instance.sop_instance_uid
    ds.SOPClassUID = UID(instance.sop_class_uid)
    return ds


def used_instances(seq: FrameSequence) -> set[str]:
    """SOP Instance UIDs whose pixels entered the frames (each frame's slab sources)."""
    used = {ref.sop_instance_uid for ref in seq.refs}
    used.update(uid for ref in seq.refs for uid, _frame in ref.sources)
    return used


def sources_used(sources: Sequence[Dataset], seq: FrameSequence) -> list[Dataset]:
    """The sources the draft was made from: a source KOS, a dose SR or a localizer that no
    frame shows is no evidence. A sequence naming none of them keeps all (a caller that
    built frames without instance references)."""
    used = used_instances(seq)
    kept = [ds for ds in sources if str(ds.get("SOPInstanceUID", "")) in used]
    return kept or list(sources)


def evidence_datasets(ctx: BuildContext, cited: Sequence[CitedInstance]) -> list[Dataset]:
    """Every current-study source the frames used, then the cited prior instances (an
    instance appears once).

    highdicom files same-study evidence under Current Requested Procedure Evidence and
    other studies under Pertinent Other Evidence; the current study comes first so the
    patient and study modules are copied from it.
    """
    current = [ds for ds in ctx.sources if ds.StudyInstanceUID == ctx.current_study_uid]
    if not current:
        raise OutputBuildError(
            f"no source dataset belongs to the reported study {ctx.current_study_uid}"
        )
    known = {str(ds.SOPInstanceUID): ds for ds in ctx.sources}
    seen = {str(ds.SOPInstanceUID) for ds in current}
    for instance in cited:
        if instance.sop_instance_uid in known:
            ds = known[instance.sop_instance_uid]
        elif instance.study_uid == ctx.current_study_uid:
            raise OutputBuildError(
                f"cited instance {instance.sop_instance_uid} is missing from the source datasets"
            )
        else:
            ds = minimal_reference(instance)
        if instance.sop_instance_uid not in seen:
            seen.add(instance.sop_instance_uid)
            current.append(ds)
    return current


def report_texts(report: DraftReport) -> list[str]:
    """Every free text of a draft (to decide the character set)."""
    texts = [report.exam, report.technique, report.comparison, report.clinical_history,
             report.limitations, *report.recommendations, *report.triage.reasons,
             *report.triage.critical_findings]
    texts += [f.text for f in report.findings] + [f.system for f in report.findings]
    texts += [i.text for i in report.impression]
    return texts


def choose_charset(report: DraftReport, sources: Sequence[Dataset],
                   extra: Sequence[str] = ()) -> str | None:
    """ISO_IR 192 (UTF-8) when any text the SR states is not ASCII, else the first
    source's own (its copied patient and study attributes are in it)."""
    if not all(text.isascii() for text in [*report_texts(report), *extra]):
        return "ISO_IR 192"
    if not sources:
        return None
    value = sources[0].get("SpecificCharacterSet")
    if value is None:
        return None
    return value if isinstance(value, str) else "\\".join(str(v) for v in value)
