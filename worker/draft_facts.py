"""The exam's facts for one draft's outputs: from the headers and the order, never the
model (README "What radraft states and where it comes from")."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from radraft.core.settings import Settings
from radraft.ehr.outbound import ExamFacts, OrderInfo
from radraft.reporting.facts import (
    StudyFacts,
    observation_time,
    prior_lines,
    procedure_of,
    series_lines,
    study_facts,
)
from radraft.reporting.report_schema import DraftReport
from radraft.reporting.sequence import FrameSequence
from radraft.reporting.sr.common import MANUFACTURER, current_study_uid


def draft_facts(settings: Settings, seq: FrameSequence, sources: Sequence[Dataset],
                order: OrderInfo | None, report: DraftReport | None = None,
                priors: Sequence[Path] = ()) -> StudyFacts:
    """The exam's facts (headers, order), shared by the SR, the HL7 result and the renders.

    Cited prior images are named by their own series/instance numbers: their headers are
    read from the prior folders when `sources` (the current study) lacks them."""
    mine = [ds for ds in sources if ds.get("Manufacturer") != MANUFACTURER]
    study_uid = current_study_uid(seq, mine or sources)
    ordered = sorted(mine, key=lambda ds: str(ds.get("StudyInstanceUID", "")) != study_uid)
    known = {str(ds.get("SOPInstanceUID", "")) for ds in ordered}
    cited = report.cited_frames() if report is not None else []
    missing = {seq.refs[f].sop_instance_uid for f in cited
               if 0 <= f < seq.frame_count and seq.refs[f].is_prior} - known
    if missing:
        ordered += [ds for folder in priors for ds in _headers(folder)
                    if str(ds.get("SOPInstanceUID", "")) in missing]
    return study_facts(ordered, seq, order=order, site_zone=settings.site.timezone,
                       current_study_uid=study_uid)


def _headers(folder: Path) -> list[Dataset]:
    found: list[Dataset] = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            try:
                found.append(dcmread(path, stop_before_pixels=True))
            except (InvalidDicomError, OSError):
                continue  # not an image header: it names no cited image
    return found


def order_with_facts(order: OrderInfo, facts: StudyFacts) -> OrderInfo:
    """The order as the result states it: the exam's time from the headers, the procedure
    from the header when the order has none (facts.procedure prefers the order's)."""
    procedure = facts.procedure
    changes: dict[str, Any] = {"observed_at": facts.observed_at,
                               "observed_date_only": facts.observed_date_only}
    if not (order.procedure_text or order.procedure_code):
        changes.update(procedure_text=procedure.meaning, procedure_code=procedure.code,
                       procedure_coding_system=procedure.scheme)
    if not order.modality:
        changes["modality"] = facts.modality
    return dataclasses.replace(order, **changes)


def exam_facts(report: DraftReport, seq: FrameSequence, facts: StudyFacts) -> ExamFacts:
    return ExamFacts(series=tuple(series_lines(seq, facts)), priors=tuple(prior_lines(seq)),
                     finding_places=tuple(tuple(facts.image_places(seq, f.frames))
                                          for f in report.findings))


def sheet_labels(seq: FrameSequence, report: DraftReport, facts: StudyFacts) -> dict[int, str]:
    """"cited S7 I271" under each cited frame of the contact sheet."""
    labels: dict[int, str] = {}
    for frame in report.cited_frames():
        if not 0 <= frame < seq.frame_count:
            continue
        place = facts.places.get(seq.refs[frame].sop_instance_uid)
        labels[frame] = (f"cited S{place.series_number} I{place.instance_number}"
                         if place else "cited")
    return labels


def order_from_header(order: OrderInfo, header: Dataset | None, settings: Settings) -> OrderInfo:
    """`order_with_facts` when only one header is at hand (an escalation built later): the
    exam's time and, when the order has none, the header's procedure."""
    if header is None:
        return order
    observed, date_only = observation_time([header], settings.site.timezone)
    changes: dict[str, Any] = {"observed_at": observed, "observed_date_only": date_only}
    if not (order.procedure_text or order.procedure_code):
        procedure = procedure_of([header], order)
        changes.update(procedure_text=procedure.meaning, procedure_code=procedure.code,
                       procedure_coding_system=procedure.scheme)
    return dataclasses.replace(order, **changes)
