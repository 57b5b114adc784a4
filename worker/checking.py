"""The model's answer checked before anything leaves: the check, the one re-ask, the ED
alert decision and what the alert states (issue 19).

`reporting.checks` judges an answer (pure); this module runs it in the pipeline: an
inconsistent answer is asked again at most `consistency.max_reasks` times with the reasons,
the last answer is kept whatever its verdict (never "fixed" here), and the ED alert follows
`alerts.unsupported` when the verdict is inconsistent.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydicom.dataset import Dataset

from radraft.core import audit
from radraft.core.settings import ProfileSettings, Settings
from radraft.ehr.outbound import AlertBasis, AlertFinding
from radraft.reporting.checks import Consistency, check_report, note_text, policy_for, reask_text
from radraft.reporting.model import DraftResult, ModelBackend
from radraft.reporting.prompts import build_prompt
from radraft.reporting.report_schema import DraftReport
from radraft.reporting.sequence import FrameSequence

log = logging.getLogger(__name__)

# none: routine triage, no alert; send: supported; held / sent-anyway: unsupported triage
# under alerts.unsupported hold / send.
AlertDecision = Literal["none", "send", "held", "sent-anyway"]
UNSUPPORTED_BOARD_TEXT = "AI triage unsupported — radiologist review"
LIMITATIONS_MAX = 400  # DraftReport.limitations' maxLength


@dataclass
class Checked:
    """The kept answer, its verdict, and every earlier verdict (for the audit)."""

    result: DraftResult  # the backend's answer that is kept
    verdict: Consistency
    reasks: int = 0
    earlier: list[list[str]] = field(default_factory=list)  # reasons of replaced answers
    reask_prompts: list[str] = field(default_factory=list)  # SHA-256 of each re-ask prompt


def check_answer(
    settings: Settings, backend: ModelBackend, seq: FrameSequence, *, profile_name: str,
    profile: ProfileSettings, context: str, remote: bool, result: DraftResult,
) -> Checked:
    """Check `result`; ask again with the reasons while it fails, at most max_reasks times."""
    policy = policy_for(profile_name, profile)
    described = str(seq.metadata.get("study_description", "") or "")
    verdict = check_report(result.report, seq.segments, seq.frame_count, policy,
                           study_description=described)
    checked = Checked(result=result, verdict=verdict)
    while not checked.verdict.consistent and checked.reasks < settings.consistency.max_reasks:
        checked.earlier.append(checked.verdict.reason_texts())
        extra = reask_text(checked.verdict.reasons)
        prompt = build_prompt(
            seq, context=context, remote=remote,
            profile_prompt=f"{profile.prompt}\n\n{extra}".strip())
        checked.reasks += 1
        checked.reask_prompts.append(prompt.sha256)
        log.info("answer inconsistent (%d reasons): asking again (%d of %d)",
                 len(checked.verdict.reasons), checked.reasks, settings.consistency.max_reasks)
        checked.result = backend.draft(seq, prompt)
        checked.verdict = check_report(checked.result.report, seq.segments, seq.frame_count,
                                       policy, study_description=described)
    return checked


def alert_decision(settings: Settings, verdict: Consistency) -> AlertDecision:
    if not verdict.report.triage.level.alerts_ed:
        return "none"
    if verdict.consistent:
        return "send"
    return "sent-anyway" if settings.alerts.unsupported == "send" else "held"


def annotated(verdict: Consistency, reasks: int, decision: AlertDecision) -> DraftReport:
    """The report the outputs (SR, ORU, text, HTML) are built from: the checked report, and
    when it is inconsistent the check's note first in Limitations, the free-text spot every
    builder renders. The stored draft keeps the model's text as it was."""
    alert = {"held": "held", "sent-anyway": "sent anyway"}.get(decision, "")
    # Within the schema's 400 characters for Limitations, the model's own text kept whole
    # and the note taking what is left (at least a short one).
    own = verdict.report.limitations.strip()
    note = note_text(verdict, reasks=reasks, alert=alert,
                     limit=max(LIMITATIONS_MAX - len(own) - 1, 160))
    if not note:
        return verdict.report
    limitations = f"{note} {own}".strip()[:LIMITATIONS_MAX]
    return verdict.report.model_copy(update={"limitations": limitations})


def _numbers(sources: Sequence[Dataset]) -> dict[str, tuple[str, str]]:
    found = {}
    for ds in sources:
        uid = str(ds.get("SOPInstanceUID", ""))
        series, instance = ds.get("SeriesNumber"), ds.get("InstanceNumber")
        if uid:
            found[uid] = ("" if series is None else str(series),
                          "" if instance is None else str(instance))
    return found


def frame_place(seq: FrameSequence, frame: int, numbers: dict[str, tuple[str, str]]) -> str:
    """"series 3, image 45" (", frame 7" inside a multi-frame object) for a frame index."""
    ref = seq.refs[frame]
    series, instance = numbers.get(ref.sop_instance_uid, ("", ""))
    place = f"series {series or '?'}, image {instance or '?'}"
    if ref.frame_number is not None:
        place += f", frame {ref.frame_number}"
    if not series or not instance:
        place += f" (SOP Instance UID {ref.sop_instance_uid})"
    return place


def key_image_link(settings: Settings, seq: FrameSequence, frame: int) -> str:
    ref = seq.refs[frame]
    console = settings.alerts.console_url.rstrip("/") or \
        f"http://{settings.web.host}:{settings.web.port}"
    return settings.alerts.key_image_url.format(
        console_url=console, study_uid=ref.study_uid, series_uid=ref.series_uid,
        sop_uid=ref.sop_instance_uid, frame=ref.frame_number or 1, frame_index=frame)


def alert_basis(settings: Settings, checked: Checked, decision: AlertDecision,
                seq: FrameSequence, sources: Sequence[Dataset]) -> AlertBasis:
    """What the ED alert names: each supporting finding, where, and its key image."""
    verdict = checked.verdict
    numbers = _numbers(sources)
    findings = []
    for index in verdict.supporting:
        finding = verdict.report.findings[index]
        frames = [f for f in finding.frames if 0 <= f < seq.frame_count
                  and not seq.refs[f].is_prior]
        frame = frames[0] if frames else None
        findings.append(AlertFinding(
            text=f"{finding.system}: {finding.text}", severity=str(finding.severity),
            where=frame_place(seq, frame, numbers) if frame is not None else "",
            link=key_image_link(settings, seq, frame) if frame is not None else ""))
    unsupported = tuple(verdict.reason_texts()) if decision == "sent-anyway" else ()
    return AlertBasis(findings=tuple(findings), unsupported=unsupported)


def draft_columns(checked: Checked | None, decision: AlertDecision,
                  basis: AlertBasis | None) -> dict[str, Any]:
    """The Draft row's consistency columns (migration 0003)."""
    if checked is None:
        return {}
    return {"consistency": checked.verdict.state,
            "consistency_reasons": checked.verdict.reason_texts(),
            "reasks": checked.reasks, "alert_decision": decision,
            "alert_basis": basis.to_json() if basis is not None else None}


def audit_check(session: Any, *, study_uid: str, job_id: int, checked: Checked | None,
                decision: AlertDecision) -> None:
    """`draft.checked` for every checked draft: state, reason codes and texts, re-asks, the
    earlier answers' reasons, what was merged and the alert decision (no names: the texts
    are the model's findings and radraft's words)."""
    if checked is None:
        return
    verdict = checked.verdict
    audit.record(session, "draft.checked", study_uid=study_uid, job_id=job_id,
                 state=verdict.state, reasons=verdict.reason_texts(),
                 codes=sorted({r.code for r in verdict.reasons}), reasks=checked.reasks,
                 earlier_reasons=checked.earlier, reask_prompts=checked.reask_prompts,
                 merged=list(verdict.merged),
                 triage=verdict.report.triage.level.value, alert=decision)
