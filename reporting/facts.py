"""What a draft states about the exam, read from the headers and the order, never the model.

`study_facts` gathers, once per draft, the facts every output repeats: the procedure (the
order's, else the header's Procedure Code Sequence, Requested Procedure or Study
Description), the exam's observation time (Study, else Series/Acquisition Date and Time, in
the site's time zone unless the header states its own offset), the patient's name and id,
and where each frame came from as people find it in a viewer ("series 7, image 271").
Pure functions of datasets: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Protocol
from zoneinfo import ZoneInfo

from pydicom.dataset import Dataset

from radraft.reporting.sequence import FrameSequence


class OrderFacts(Protocol):
    """The order's side (ehr.outbound.OrderInfo fits): accession and procedure."""

    @property
    def accession(self) -> str: ...
    @property
    def procedure_code(self) -> str: ...
    @property
    def procedure_coding_system(self) -> str: ...
    @property
    def procedure_text(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Procedure:
    """The exam as ordered or as the modality recorded it, with where that came from."""

    code: str
    scheme: str
    meaning: str
    source: str  # "order", "Procedure Code Sequence", "Study Description", ...


@dataclass(frozen=True, slots=True)
class ImagePlace:
    """An instance as a viewer shows it: its series and instance numbers."""

    series_number: str
    instance_number: str
    is_prior: bool = False
    study_date: str = ""


@dataclass(frozen=True, slots=True)
class StudyFacts:
    """The facts of one draft's exam, each with a nameable source (module docstring)."""

    study_uid: str
    modality: str
    procedure: Procedure
    observed_at: datetime | None  # timezone-aware
    observed_date_only: bool  # the header gave a date without a time
    patient_name: str  # DICOM PN as in the header ("Family^Given^Middle^Prefix^Suffix")
    patient_id: str
    accession: str
    study_description: str
    places: dict[str, ImagePlace] = field(default_factory=dict)

    def image_place(self, seq: FrameSequence, frame: int) -> str:
        """"series 7, image 271" (", frame 3" for a multi-frame object, "prior" when so)."""
        if not 0 <= frame < seq.frame_count:
            return f"no image (cited index {frame} is outside the sequence)"
        ref = seq.refs[frame]
        place = self.places.get(ref.sop_instance_uid)
        if place is None:
            # No header at hand (a prior fetched for the frames only): its series as the
            # frames describe it, never a UID or the model's frame index.
            seg = next((s for s in seq.segments if s.frame_start <= frame < s.frame_stop), None)
            name = (seg.series_description or seg.label) if seg is not None else ""
            text = f"{name} image" if name else "an image without series number"
            place = ImagePlace("", "", ref.is_prior, seg.study_date if seg is not None else "")
        else:
            text = (f"series {place.series_number or '?'}, "
                    f"image {place.instance_number or '?'}")
        if ref.frame_number is not None:
            text += f", frame {ref.frame_number}"
        if ref.is_prior:
            date = place.study_date
            text += f" (prior{', ' + display_date(date) if date else ''})"
        return text

    def image_places(self, seq: FrameSequence, frames: Sequence[int]) -> list[str]:
        """Distinct places of `frames`, in citation order."""
        out: list[str] = []
        for frame in frames:
            text = self.image_place(seq, frame)
            if text not in out:
                out.append(text)
        return out

    @property
    def exam_line(self) -> str:
        """"CT ABDOMEN, 2015-03-02 14:05" for headers of people-facing outputs."""
        when = display_moment(self.observed_at, self.observed_date_only)
        return ", ".join(p for p in (self.procedure.meaning, when) if p)


def series_lines(seq: FrameSequence, facts: StudyFacts) -> list[str]:
    """The current study's series the draft read, as the headers name them."""
    out: list[str] = []
    for seg in seq.segments:
        if seg.is_prior or seg.frame_count == 0:
            continue
        place = facts.places.get(seq.refs[seg.frame_start].sop_instance_uid)
        number = place.series_number if place else ""
        what = seg.series_description or f"{seg.modality} {seg.label}".strip()
        label = f" ({seg.label})" if seg.label and seg.label not in what else ""
        line = f"{what}{label}, {seg.plane}".rstrip(", ")
        line = f"Series {number}: {line}" if number else line
        if line not in out:
            out.append(line)
    return out


def prior_lines(seq: FrameSequence) -> list[str]:
    """The prior studies the draft compared, as their headers name them (date, modality,
    series): the frames' segment table, built from the priors' headers."""
    out: list[str] = []
    for seg in seq.segments:
        if not seg.is_prior or seg.frame_count == 0:
            continue
        what = seg.series_description or seg.label
        line = f"{display_date(seg.study_date) or 'undated'}: {seg.modality} {what}".rstrip()
        if line not in out:
            out.append(line)
    return out


def display_name(pn: str) -> str:
    """DICOM PN as people write it: "Family, Prefix Given Middle, Suffix"."""
    parts = (pn.split("=")[0].split("^") + [""] * 5)[:5]
    family, given, middle, prefix, suffix = (p.strip() for p in parts)
    rest = " ".join(p for p in (prefix, given, middle) if p)
    text = ", ".join(p for p in (family, rest) if p)
    return f"{text}, {suffix}" if suffix else text


def display_date(value: str) -> str:
    """DICOM DA "20150302" as "2015-03-02" (anything else as it is)."""
    if len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return value


def display_moment(moment: datetime | None, date_only: bool) -> str:
    if moment is None:
        return ""
    return moment.strftime("%Y-%m-%d" if date_only else "%Y-%m-%d %H:%M")


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    return "" if value is None else str(value).strip()


def _valid_code(item: Dataset) -> bool:
    """A code item a DICOM object may carry: a value, a scheme and a meaning."""
    value = _text(item, "CodeValue") or _text(item, "LongCodeValue") or _text(item, "URNCodeValue")
    return bool(value and _text(item, "CodingSchemeDesignator") and _text(item, "CodeMeaning"))


def procedure_of(sources: Sequence[Dataset], order: OrderFacts | None) -> Procedure:
    """The order's procedure, else the header's: code sequence, requested procedure, study
    description; a study without any says only its modality."""
    if order is not None and (order.procedure_text.strip() or order.procedure_code.strip()):
        return Procedure(order.procedure_code, order.procedure_coding_system or "L",
                         order.procedure_text.strip() or order.procedure_code, "order")
    for ds in sources:
        for item in ds.get("ProcedureCodeSequence", []) or []:
            if _valid_code(item):
                return Procedure(_text(item, "CodeValue"), _text(item, "CodingSchemeDesignator"),
                                 _text(item, "CodeMeaning"), "Procedure Code Sequence")
    for keyword, source in (("RequestedProcedureDescription", "Requested Procedure Description"),
                            ("StudyDescription", "Study Description")):
        for ds in sources:
            if _text(ds, keyword):
                return Procedure("", "", _text(ds, keyword), source)
    modality = _text(sources[0], "Modality") if sources else ""
    return Procedure("", "", f"{modality} study".strip(), "Modality")


def _date_time(date: str, time: str, zone: timezone | ZoneInfo) -> tuple[datetime, bool] | None:
    date = date.replace(".", "").replace("-", "")
    if len(date) != 8 or not date.isdigit():
        return None
    time = time.replace(":", "").split(".")[0]
    try:
        if not time or not time.isdigit() or len(time) % 2:
            return datetime(int(date[:4]), int(date[4:6]), int(date[6:8]), tzinfo=zone), True
        time = time.ljust(6, "0")[:6]
        return datetime(int(date[:4]), int(date[4:6]), int(date[6:8]), int(time[:2]),
                        int(time[2:4]), int(time[4:6]), tzinfo=zone), False
    except ValueError:
        return None  # "20150231", "256100": not a moment


def _zone_of(offset: str) -> timezone | None:
    """"+0100" / "-0500" as a fixed zone; None if it is not one."""
    if len(offset) == 5 and offset[0] in "+-" and offset[1:].isdigit():
        minutes = int(offset[1:3]) * 60 + int(offset[3:])
        if minutes < 24 * 60:
            return timezone(timedelta(minutes=minutes if offset[0] == "+" else -minutes))
    return None


def _zone(ds: Dataset, site_zone: str) -> timezone | ZoneInfo:
    """The header's Timezone Offset From UTC when present, else the site's zone."""
    return _zone_of(_text(ds, "TimezoneOffsetFromUTC")) or ZoneInfo(site_zone)


def observation_time(sources: Sequence[Dataset], site_zone: str) -> tuple[datetime | None, bool]:
    """When the exam was performed: Study Date/Time, else the earliest Series, Acquisition
    or Content Date/Time of the current study's instances. (moment, date only?)"""
    if not sources:
        return None, False
    first = sources[0]
    found = _date_time(_text(first, "StudyDate"), _text(first, "StudyTime"),
                       _zone(first, site_zone))
    if found is not None and not found[1]:
        return found
    candidates: list[tuple[datetime, bool]] = []
    for ds in sources:
        zone = _zone(ds, site_zone)
        stamp = _text(ds, "AcquisitionDateTime")
        if len(stamp) >= 8:
            # DT may carry its own offset ("20150203111658.000000+0100").
            own = next((stamp[i:i + 5] for i in range(8, len(stamp)) if stamp[i] in "+-"), "")
            if own:
                zone_dt: timezone | ZoneInfo = _zone_of(own) or zone
            else:
                zone_dt = zone
            got = _date_time(stamp[:8], stamp[8:14], zone_dt)
            if got:
                candidates.append(got)
        for date, time in (("SeriesDate", "SeriesTime"), ("AcquisitionDate", "AcquisitionTime"),
                           ("ContentDate", "ContentTime")):
            got = _date_time(_text(ds, date), _text(ds, time), zone)
            if got:
                candidates.append(got)
    timed = [c for c in candidates if not c[1]]
    if timed:
        return min(timed, key=lambda c: c[0])
    if found is not None:
        return found
    return min(candidates, key=lambda c: c[0]) if candidates else (None, False)


def image_places(sources: Sequence[Dataset], current_study_uid: str) -> dict[str, ImagePlace]:
    places: dict[str, ImagePlace] = {}
    for ds in sources:
        uid = _text(ds, "SOPInstanceUID")
        if uid:
            places[uid] = ImagePlace(
                _text(ds, "SeriesNumber"), _text(ds, "InstanceNumber"),
                is_prior=_text(ds, "StudyInstanceUID") != current_study_uid,
                study_date=_text(ds, "StudyDate"),
            )
    return places


def study_facts(sources: Sequence[Dataset], seq: FrameSequence, *, order: OrderFacts | None,
                site_zone: str, current_study_uid: str) -> StudyFacts:
    """The facts of the draft of `current_study_uid` (sources: current study first)."""
    current = [ds for ds in sources if _text(ds, "StudyInstanceUID") == current_study_uid]
    first = current[0] if current else (sources[0] if sources else Dataset())
    observed, date_only = observation_time(current, site_zone)
    accession = (order.accession if order is not None and order.accession
                 else _text(first, "AccessionNumber"))
    modality = next((seg.modality for seg in seq.segments if not seg.is_prior and seg.modality),
                    _text(first, "Modality"))
    return StudyFacts(
        study_uid=current_study_uid, modality=modality,
        procedure=procedure_of(current, order), observed_at=observed,
        observed_date_only=date_only, patient_name=_text(first, "PatientName"),
        patient_id=_text(first, "PatientID"), accession=accession,
        study_description=_text(first, "StudyDescription"),
        places=image_places(sources, current_study_uid),
    )
