"""`build_outputs`: one draft to its DICOM objects (TID 2000 SR, TID 1500 SR, KOS)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian

from radraft.core.errors import OutputBuildError
from radraft.core.settings import Settings
from radraft.core.types import JobKey
from radraft.reporting.facts import (
    StudyFacts,
    prior_lines,
    series_lines,
    study_facts,
)
from radraft.reporting.report_schema import DraftReport
from radraft.reporting.sequence import FrameSequence
from radraft.reporting.sr.common import (
    MANUFACTURER,
    BuildContext,
    PredecessorRef,
    choose_charset,
    current_study_uid,
    sources_used,
)
from radraft.reporting.sr.diagnostic import build_diagnostic_sr
from radraft.reporting.sr.document import RequestInfo, header_for_copy
from radraft.reporting.sr.kos import build_kos
from radraft.reporting.sr.measurement import build_measurement_report


def stated_texts(seq: FrameSequence, facts: StudyFacts) -> list[str]:
    """What the SR states from the headers besides the copied modules (a prior's series
    description may be in another character set than the current study's)."""
    return [facts.exam_line, *series_lines(seq, facts), *prior_lines(seq)]


def dataset_to_bytes(ds: Dataset) -> bytes:
    """A Part 10 file: file meta, explicit VR little endian (what the outbox stores)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "RADRAFT_010"
    ds.file_meta = meta
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True, little_endian=True, implicit_vr=False)
    return buffer.getvalue()


@dataclass(frozen=True, slots=True)
class SrOutputs:
    """The DICOM objects of one draft.

    `tid1500` is None for a draft without findings, `kos` when no finding cites a frame.
    """

    sr: Dataset
    tid1500: Dataset | None
    kos: Dataset | None

    def datasets(self) -> dict[str, Dataset]:
        """The objects present, keyed "sr", "tid1500", "kos"."""
        found = {"sr": self.sr, "tid1500": self.tid1500, "kos": self.kos}
        return {name: ds for name, ds in found.items() if ds is not None}

    def to_bytes(self) -> dict[str, bytes]:
        """Each present object as Part 10 bytes, keyed like `datasets()`."""
        return {name: dataset_to_bytes(ds) for name, ds in self.datasets().items()}


def build_outputs(
    report: DraftReport,
    seq: FrameSequence,
    sources: Sequence[Dataset],
    *,
    settings: Settings,
    job_key: JobKey,
    model_name: str,
    model_version: str,
    predecessor: PredecessorRef | None,
    order: RequestInfo | None,
    now: datetime | None = None,
    facts: StudyFacts | None = None,
    notes: Sequence[str] = (),
) -> SrOutputs:
    """Build SR (TID 2000), TID 1500 report and KOS; UIDs derive from `job_key`.

    `sources` are the headers of the current study's instances (and of cited priors when
    at hand); `now` defaults to the current UTC time (content dates); `facts` (the exam as
    the headers and the order state it) is derived from `sources` when not given; `notes`
    follow the AI notice as the SR's first statements (e.g. "AI triage unsupported").
    """
    # radraft's own earlier outputs, and whatever no frame shows (a source KOS, a dose SR),
    # are no evidence for this draft.
    sources = sources_used([ds for ds in sources if ds.get("Manufacturer") != MANUFACTURER], seq)
    if not sources:
        raise OutputBuildError("no source datasets: an SR needs the study's instances as evidence")
    when = now or datetime.now(UTC)
    if when.tzinfo is None:
        raise OutputBuildError("`now` must be timezone-aware")
    study_uid = current_study_uid(seq, sources)
    # The first current-study source lends its patient and study modules to every object.
    ordered = sorted(sources, key=lambda ds: ds.StudyInstanceUID != study_uid)
    ordered[0] = header_for_copy(ordered[0], order)
    found = facts or study_facts(ordered, seq, order=order, site_zone=settings.site.timezone,
                                 current_study_uid=study_uid)
    ctx = BuildContext(
        settings=settings, job_key=job_key,
        # Empty TEXT values are invalid DICOM: an unnamed model or version says so.
        model_name=model_name.strip() or "unnamed model",
        model_version=model_version.strip() or "unknown",
        now=when, current_study_uid=study_uid, sources=tuple(ordered),
        charset=choose_charset(report, ordered, extra=[*notes, *stated_texts(seq, found)]),
        facts=found, notes=tuple(notes),
    )
    try:
        sr = build_diagnostic_sr(report, seq, ctx, predecessor=predecessor, order=order)
        tid1500 = build_measurement_report(report, seq, ctx, order=order)
        kos = build_kos(report, seq, ctx, order=order)
    except (ValueError, TypeError, AttributeError) as exc:
        raise OutputBuildError(
            f"building the SR for study {ctx.current_study_uid} failed: {exc}"
        ) from exc
    return SrOutputs(sr=sr, tid1500=tid1500, kos=kos)
