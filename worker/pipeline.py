"""One study to a draft and its built outputs: frames, prompt, model, SR/TID 1500/KOS, HL7.

No database here: `radraft draft` calls it on folders, the draft task after gathering from
storage. Each stage's wall time lands in `DraftProduct.timings`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from PIL import Image
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from radraft.core.settings import Hl7Destination, ProfileSettings, Settings
from radraft.core.types import JobKey
from radraft.core.uids import control_id, derived_uid
from radraft.ehr.outbound import (
    AlertBasis,
    ExamFacts,
    OrderInfo,
    PatientInfo,
    build_ed_alert,
    build_oru,
    patient_from_pn,
)
from radraft.reporting.facts import StudyFacts
from radraft.reporting.frames import build_frame_sequence
from radraft.reporting.model import ModelBackend
from radraft.reporting.pictures import contact_sheet
from radraft.reporting.prompts import build_prompt
from radraft.reporting.render import AI_NOTICE, render_text
from radraft.reporting.render_page import render_document
from radraft.reporting.report_schema import DraftReport
from radraft.reporting.sequence import FrameSequence
from radraft.reporting.sr import PredecessorRef, build_outputs
from radraft.worker.checking import (
    AlertDecision,
    Checked,
    alert_basis,
    alert_decision,
    annotated,
    check_answer,
)
from radraft.worker.draft_facts import (
    draft_facts,
    exam_facts,
    order_with_facts,
    sheet_labels,
)
from radraft.worker.outbox import OutboxItem

log = logging.getLogger(__name__)


@dataclass
class DraftProduct:
    """What one draft produced, ready for the outbox or a folder."""

    report: DraftReport
    model_name: str
    prompt_sha256: str
    # What the model read besides the pixels (system + user text), for the audit trail.
    prompt_text: str
    frame_count: int
    segments: list[dict[str, Any]]
    items: list[OutboxItem]
    rendered_text: str
    rendered_html: str
    triage_level: str
    uids: dict[str, str]
    timings: dict[str, float] = field(default_factory=dict)
    # PNG of each cited frame, for the console (stored beside the Draft row).
    key_frames: dict[int, bytes] = field(default_factory=dict)
    # The consistency check of the kept answer, the re-asks, the ED alert decision.
    checked: Checked | None = None
    alert: AlertDecision = "none"
    alert_basis: AlertBasis | None = None


@dataclass(frozen=True)
class DraftRequest:
    study: Path
    priors: Sequence[Path]
    profile: ProfileSettings
    job_key: JobKey  # (study UID, version, profile): output UIDs derive from it
    context_text: str = ""
    predecessor: PredecessorRef | None = None  # the SR this draft supersedes
    order: OrderInfo | None = None  # None: no accession known, no HL7 result
    patient: PatientInfo | None = None  # PHI: into the HL7 message only
    hl7_destinations: dict[str, Hl7Destination] = field(default_factory=dict)
    progress: Callable[[str], None] | None = None
    # The SR's evidence headers when the caller has them (the index); else read from disk.
    sources: Sequence[Dataset] | None = None
    # The draft's moment (content times, MSH-7); None: now.
    now: datetime | None = None


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = round(time.perf_counter() - start, 3)


def model_is_remote(settings: Settings) -> bool:
    """True when any model endpoint is not on this host: the prompt then carries no
    patient identifiers (DESIGN.md "Rules of the house")."""
    if settings.model.backend != "openai":
        return False
    for url in settings.model.base_urls:
        host = urlparse(url).hostname or ""
        if host == "localhost":
            continue
        try:
            if ipaddress.ip_address(host).is_loopback:
                continue
        except ValueError:
            pass
        return True
    return False


def read_sources(study: Path) -> list[Dataset]:
    """The headers of the study's instances (the SR's evidence), pixels left on disk.

    Every file, not only *.dcm: media and modality exports name files "IM0001" or "4648"."""
    sources: list[Dataset] = []
    for path in sorted(study.rglob("*")):
        if not path.is_file() or path.name.upper() == "DICOMDIR":
            continue
        try:
            sources.append(dcmread(path, stop_before_pixels=True))
        except InvalidDicomError:
            continue  # a README or thumbnail beside the images
        except OSError as exc:
            log.warning("%s: not read as evidence (%s)", path, exc)
    return sources


def predecessor_ref(settings: Settings, job_key: JobKey, sr_uid: str) -> PredecessorRef:
    """The earlier draft's SR; reporting.sr keeps one SR series per (study, profile), so
    its series UID is derived the same way (BuildContext.series_uid)."""
    study_uid, _version, profile = job_key
    series = derived_uid(settings.site.uid_root, study_uid, profile, "sr", "series")
    return PredecessorRef(sop_instance_uid=sr_uid, series_uid=series, study_uid=study_uid)


def _segments_json(seq: FrameSequence) -> list[dict[str, Any]]:
    return [dataclasses.asdict(segment) for segment in seq.segments]


def patient_from_header(ds: Dataset | None, patient_id: str) -> PatientInfo:
    """PID content from a DICOM header when the EHR store knows no patient (PHI: for the
    HL7 message only; PID-5 is required, so an unknown name is sent as "UNKNOWN")."""
    if ds is None:
        return PatientInfo(patient_id=patient_id, family_name="UNKNOWN")
    patient = patient_from_pn(str(ds.get("PatientID", patient_id)),
                              str(ds.get("PatientName", "") or ""),
                              birth_date=str(ds.get("PatientBirthDate", "") or ""),
                              sex=str(ds.get("PatientSex", "") or "U"))
    if not any(patient.xpn()):
        patient = dataclasses.replace(patient, family_name="UNKNOWN")
    return patient


def _hl7_items(
    settings: Settings, request: DraftRequest, report: DraftReport,
    sources: Sequence[Dataset], facts: StudyFacts, exam: ExamFacts, now: datetime,
    basis: AlertBasis | None,
) -> list[OutboxItem]:
    """ORU for each RIS destination, the alert for each ED destination when `basis` is
    given (urgent/critical triage that passed the check, or the site sends anyway)."""
    if request.order is None:
        log.info("study %s: no accession, no HL7 result", request.job_key[0])
        return []
    order = order_with_facts(request.order, facts)
    first = next((ds for ds in sources if str(ds.get("StudyInstanceUID", "")) == facts.study_uid),
                 sources[0] if sources else None)
    patient = request.patient or patient_from_header(first, request.order.patient_id)
    key = request.job_key
    items = []
    # A copy for folder destinations (and `radraft draft`), addressed to no one in particular.
    generic: dict[str | None, Hl7Destination] = {
        None: Hl7Destination(kind="hl7", host="localhost", port=2575, role="ris"),
        "": Hl7Destination(kind="hl7", host="localhost", port=2575, role="ed"),
    }
    targets = dict(generic)
    targets.update(request.hl7_destinations.items())
    for name, dest in targets.items():
        name = name or None
        common: dict[str, Any] = {"order": order, "patient": patient, "now": now,
                                  "settings": settings, "destination": dest, "job_key": key}
        if dest.role == "ris":
            payload = build_oru(report, redraft=request.predecessor is not None, facts=exam,
                                **common)
            items.append(OutboxItem("oru", payload, control_id(*key, "oru"), name))
        elif basis is not None:
            payload = build_ed_alert(report, basis=basis, **common)
            items.append(OutboxItem("alert", payload, control_id(*key, "alert"), name))
    return items


def key_frame_pngs(seq: FrameSequence, frames: Sequence[int]) -> dict[int, bytes]:
    """PNG bytes of each cited frame inside the sequence (the model's schema bounds the
    indices, a stand-in model may not: out-of-range citations are skipped)."""
    pngs: dict[int, bytes] = {}
    for index in frames:
        if 0 <= index < seq.frame_count:
            buffer = BytesIO()
            Image.fromarray(seq.frames[index]).save(buffer, format="PNG")
            pngs[index] = buffer.getvalue()
    return pngs


def run_draft(
    settings: Settings, request: DraftRequest, backend: ModelBackend,
) -> DraftProduct:
    """Frames -> prompt -> model -> outputs for one study (no database)."""
    timings: dict[str, float] = {}
    note = request.progress or (lambda _m: None)
    key = request.job_key
    with _timed(timings, "frames"):
        note("frames")
        # The backend says how many frames its video budget holds at the profile's size.
        seq = build_frame_sequence(
            request.study, priors=tuple(request.priors), recipe=request.profile.frames,
            token_budget=backend.token_budget(), progress=request.progress,
        )
    with _timed(timings, "prompt"):
        prompt = build_prompt(
            seq, context=request.context_text, profile_prompt=request.profile.prompt,
            remote=model_is_remote(settings),
        )
    with _timed(timings, "model"):
        note(f"model ({seq.frame_count} frames)")
        result = backend.draft(seq, prompt)
    with _timed(timings, "check"):
        # The answer checked; an inconsistent one asked again (bounded), never fixed here.
        checked = check_answer(
            settings, backend, seq, profile_name=key[2],
            profile=request.profile, context=request.context_text,
            remote=model_is_remote(settings), result=result)
        result = checked.result
    report: DraftReport = checked.verdict.report
    decision = alert_decision(settings, checked.verdict)
    outputs_report = annotated(checked.verdict, checked.reasks, decision)
    model_name = result.model_id or settings.model.name
    with _timed(timings, "outputs"):
        note("outputs")
        # Read after the frames, not beside them: a parallel read measured slower (the
        # header parsing holds the GIL the frame threads need).
        sources = list(request.sources) if request.sources is not None \
            else read_sources(request.study)
        # One moment for every output of this draft (SR content time, MSH-7, OBR-22).
        now = request.now or datetime.now(UTC)
        facts = draft_facts(settings, seq, sources, request.order, outputs_report,
                            request.priors)
        basis = alert_basis(settings, checked, decision, seq, sources) \
            if decision in ("send", "sent-anyway") else None
        outputs = build_outputs(
            outputs_report, seq, sources, settings=settings, job_key=key,
            model_name=model_name, model_version=result.model_version,
            predecessor=request.predecessor, order=request.order, now=now, facts=facts,
        )
        items = [OutboxItem(kind, payload, str(getattr(outputs, kind).SOPInstanceUID))
                 for kind, payload in outputs.to_bytes().items()]
        text = render_text(outputs_report, seq, facts)
        html = render_document(outputs_report, seq, facts, generated=now,
                               timezone=settings.site.timezone)
        items += _hl7_items(settings, request, outputs_report, sources, facts,
                            exam_facts(outputs_report, seq, facts), now, basis)
        items.append(OutboxItem("text", text.encode(), control_id(*key, "text")))
        items.append(OutboxItem("html", html.encode(), control_id(*key, "html")))
    with _timed(timings, "contact_sheet"):
        buffer = BytesIO()
        contact_sheet(seq, cited=report.cited_frames(),
                      banner=f"{AI_NOTICE}  Triage (AI): {report.triage.level.value.upper()}",
                      labels=sheet_labels(seq, report, facts)).save(buffer, format="PNG")
        items.append(OutboxItem("sheet", buffer.getvalue(), control_id(*key, "sheet")))
        key_frames = key_frame_pngs(seq, report.cited_frames())
    return DraftProduct(
        report=report, model_name=model_name, prompt_sha256=prompt.sha256,
        prompt_text=f"{prompt.system}\n\n{prompt.text}",
        frame_count=int(seq.frame_count), segments=_segments_json(seq), items=items,
        rendered_text=text, rendered_html=html, triage_level=report.triage.level.value,
        uids={i.payload_kind: i.message_id for i in items
              if i.payload_kind in ("sr", "tid1500", "kos")},
        timings=timings, key_frames=key_frames, checked=checked, alert=decision,
        alert_basis=basis,
    )
