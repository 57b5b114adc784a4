"""One study to a draft and its built outputs: frames, prompt, model, SR/TID 1500/KOS, HL7.

No database here: `radraft draft` calls it on folders, the draft task after gathering from
storage. Each stage's wall time lands in `DraftProduct.timings`.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from radraft.core.settings import ProfileSettings, Settings
from radraft.core.uids import control_id, derived_uid
from radraft.reporting.sr import JobKey, PredecessorRef, RequestInfo, build_outputs
from radraft.worker.links import Links
from radraft.worker.outbox import OutboxItem

log = logging.getLogger(__name__)


@dataclass
class DraftProduct:
    """What one draft produced, ready for the outbox or a folder."""

    report: Any  # reporting.report_schema.DraftReport
    model_name: str
    prompt_sha256: str
    frame_count: int
    segments: list[dict[str, Any]]
    items: list[OutboxItem]
    rendered_text: str
    rendered_html: str
    triage_level: str
    uids: dict[str, str]
    contact_sheet_png: bytes = b""
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class DraftRequest:
    study: Path
    priors: Sequence[Path]
    profile_name: str
    profile: ProfileSettings
    job_key: JobKey  # (study UID, version, profile): output UIDs derive from it
    context_text: str = ""
    predecessor: PredecessorRef | None = None  # the SR this draft supersedes
    order: RequestInfo | None = None
    progress: Callable[[str], None] | None = None


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
    """The headers of the study's instances (the SR's evidence), pixels left on disk."""
    sources: list[Dataset] = []
    for path in sorted(study.rglob("*.dcm")):
        try:
            sources.append(dcmread(path, stop_before_pixels=True))
        except (InvalidDicomError, OSError) as exc:
            log.warning("%s: not read as evidence (%s)", path, exc)
    return sources


def predecessor_ref(settings: Settings, job_key: JobKey, sr_uid: str) -> PredecessorRef:
    """The earlier draft's SR; reporting.sr keeps one SR series per (study, profile), so
    its series UID is derived the same way (BuildContext.series_uid)."""
    study_uid, _version, profile = job_key
    series = derived_uid(settings.site.uid_root, study_uid, profile, "sr", "series")
    return PredecessorRef(sop_instance_uid=sr_uid, series_uid=series, study_uid=study_uid)


def _segments_json(seq: Any) -> list[dict[str, Any]]:
    rows = []
    for seg in getattr(seq, "segments", []):
        rows.append({
            "index": seg.index, "frame_start": seg.frame_start, "frame_stop": seg.frame_stop,
            "study_uid": seg.study_uid,
            "label": str(getattr(seg, "label", "")),
        })
    return rows


def run_draft(
    settings: Settings, links: Links, request: DraftRequest, backend: Any,
) -> DraftProduct:
    """Frames -> prompt -> model -> outputs for one study (no database)."""
    timings: dict[str, float] = {}
    note = request.progress or (lambda _m: None)
    with _timed(timings, "frames"):
        note("frames")
        seq = links.build_frame_sequence(
            request.study, priors=tuple(request.priors), recipe=request.profile.frames,
            progress=request.progress,
        )
    with _timed(timings, "prompt"):
        prompt = links.build_prompt(
            seq, context=request.context_text, profile_prompt=request.profile.prompt,
            remote=model_is_remote(settings),
        )
    with _timed(timings, "model"):
        note(f"model ({seq.frame_count} frames)")
        result = backend.draft(seq, prompt)
    report = result.report
    model_name = str(getattr(result, "model_id", settings.model.name))
    with _timed(timings, "outputs"):
        note("outputs")
        sources = read_sources(request.study)
        key = request.job_key
        outputs = build_outputs(
            report, seq, sources, settings=settings, job_key=key,
            model_name=model_name, model_version=str(getattr(result, "model_version", "")),
            predecessor=request.predecessor, order=request.order,
        )
        items = [
            OutboxItem(kind, payload, str(ds.SOPInstanceUID))
            for kind, payload, ds in (
                (k, b, getattr(outputs, k)) for k, b in outputs.to_bytes().items()
            )
        ]
        text = str(links.render_text(report))
        html = str(links.render_html(report))
        hl7_args = {"settings": settings, "order": request.order, "job_key": key,
                    "metadata": seq.metadata}
        items.append(OutboxItem("oru", _hl7_bytes(links.build_oru(report, **hl7_args)),
                                control_id(*key, "oru")))
        level = str(report.triage.level)
        if level in ("urgent", "critical"):
            items.append(OutboxItem("alert", _hl7_bytes(links.build_ed_alert(report, **hl7_args)),
                                    control_id(*key, "alert")))
        items.append(OutboxItem("text", text.encode(), control_id(*key, "text")))
        items.append(OutboxItem("html", html.encode(), control_id(*key, "html")))
    with _timed(timings, "contact_sheet"):
        buffer = BytesIO()
        links.contact_sheet(seq).save(buffer, format="PNG")
        items.append(OutboxItem("sheet", buffer.getvalue(), control_id(*key, "sheet")))
    return DraftProduct(
        report=report, model_name=model_name, prompt_sha256=str(prompt.sha256),
        frame_count=int(seq.frame_count), segments=_segments_json(seq), items=items,
        rendered_text=text, rendered_html=html, triage_level=level,
        uids={i.payload_kind: i.message_id for i in items if i.payload_kind in
              ("sr", "tid1500", "kos")},
        contact_sheet_png=buffer.getvalue(), timings=timings,
    )


def _hl7_bytes(message: Any) -> bytes:
    if isinstance(message, bytes):
        return message
    if hasattr(message, "to_er7"):
        return str(message.to_er7()).encode()
    return str(message).encode()
