"""The model's answer checked against itself, the profile and the frames, before anything
leaves (issue 19). Pure functions: a DraftReport, the segment table, a policy in; a verdict
out. Nothing here changes what the model said except one normalisation that is reported:
findings (and impression items) that say the same thing twice are merged.

Rules (each failure is a `Reason` with a stable code):
- `triage-unsupported`: urgent triage needs a finding of severity significant or critical,
  critical triage a critical finding, with at least one cited frame of the current study
  that shows the finding's site;
- `critical-under-routine`: a critical finding under routine triage;
- `type-not-allowed` / `site-not-allowed`: the coded type/site is not in the profile's list;
- `type-site-mismatch`: a type that cannot be at that site (pulmonary embolism in bone);
- `severity-type-mismatch`: "Normal" coded with a severity above normal, or a pathology
  coded with severity normal;
- `frame-out-of-range` / `frame-wrong-region`: a cited frame outside the sequence, or one
  whose series shows a body region where the site is not;
- `boilerplate`: a text that says nothing ("normal", "critical", "normal normal"): a finding
  whose text is only such words, a named critical finding, or (under urgent/critical
  triage) a triage reason or impression;
- `conflicting-duplicates`: the same finding text with different severity, type or site.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from radraft.core.types import TriageLevel
from radraft.reporting.checks.anatomy import (
    NORMAL_TYPE,
    regions_of,
    site_seen_in,
    type_fits_site,
)
from radraft.reporting.codes import by_key
from radraft.reporting.report_schema import (
    MAX_FRAMES_CITED,
    DraftReport,
    Finding,
    ImpressionItem,
    Severity,
)
from radraft.reporting.sequence import Segment

State = Literal["consistent", "inconsistent"]

# Words that carry no content on their own: a text made only of these says nothing.
EMPTY_WORDS = frozenset({
    "normal", "abnormal", "minor", "significant", "critical", "urgent", "routine", "none",
    "n", "a", "na", "nil", "finding", "findings", "unknown", "see", "above", "report",
    "impression", "the", "and", "no", "yes", "ok", "null", "text",
})
# Severity a triage level needs from at least one supporting finding.
NEEDED: dict[TriageLevel, frozenset[Severity]] = {
    TriageLevel.CRITICAL: frozenset({Severity.CRITICAL}),
    TriageLevel.URGENT: frozenset({Severity.SIGNIFICANT, Severity.CRITICAL}),
}
_RANK = {Severity.NORMAL: 0, Severity.MINOR: 1, Severity.SIGNIFICANT: 2, Severity.CRITICAL: 3}


@dataclass(frozen=True)
class CheckPolicy:
    """What the profile allows: finding type and site keys (None: every code)."""

    profile: str = ""
    finding_types: frozenset[str] | None = None
    finding_sites: frozenset[str] | None = None


@dataclass(frozen=True)
class Reason:
    code: str
    text: str
    finding: int | None = None  # 1-based number of the finding in the (merged) report


@dataclass(frozen=True)
class Consistency:
    """The verdict on one answer: state, reasons, what was merged, what supports triage."""

    state: State
    reasons: tuple[Reason, ...]
    report: DraftReport  # the answer with duplicates merged (nothing else changed)
    merged: tuple[str, ...] = ()
    # 0-based indices into `report.findings` of the findings that justify the triage.
    supporting: tuple[int, ...] = field(default=())

    @property
    def consistent(self) -> bool:
        return self.state == "consistent"

    def reason_texts(self) -> list[str]:
        return [r.text for r in self.reasons]


def is_empty_text(text: str) -> bool:
    """True for text made only of words that say nothing ("normal", "Critical.", "n/a")."""
    words = re.findall(r"[^\W_]+", text.lower())
    return not words or all(w in EMPTY_WORDS for w in words)


def _key_text(text: str) -> str:
    return " ".join(re.findall(r"[^\W_]+", text.lower()))


def _label(index: int, finding: Finding) -> str:
    text = finding.text if len(finding.text) <= 60 else finding.text[:57] + "..."
    return f"finding {index + 1} ({finding.system}: {text!r})"


def merge_duplicates(report: DraftReport) -> tuple[DraftReport, list[str], list[Reason]]:
    """Findings with the same system, text, severity, type and site become one (frames
    united); impression items with the same text become one. The same text with another
    severity, type or site is a conflict, reported, not merged."""
    kept: list[Finding] = []
    notes: list[str] = []
    reasons: list[Reason] = []
    for index, finding in enumerate(report.findings):
        same = next((k for k, f in enumerate(kept)
                     if _key_text(f.system) == _key_text(finding.system)
                     and _key_text(f.text) == _key_text(finding.text)), None)
        if same is None:
            kept.append(finding)
            continue
        other = kept[same]
        if (other.severity, other.finding_type, other.finding_site) != (
                finding.severity, finding.finding_type, finding.finding_site):
            reasons.append(Reason(
                "conflicting-duplicates",
                f"{_label(index, finding)} repeats finding {same + 1} with another severity, "
                f"type or site ({finding.severity} vs {other.severity})", index + 1))
            kept.append(finding)
            continue
        frames = sorted(set(other.frames) | set(finding.frames))[:MAX_FRAMES_CITED]
        kept[same] = other.model_copy(update={"frames": frames})
        notes.append(f"finding {index + 1} merged into finding {same + 1} (same text)")
    impression: list[ImpressionItem] = []
    for item in sorted(report.impression, key=lambda i: i.rank):
        if any(_key_text(i.text) == _key_text(item.text) for i in impression):
            notes.append(f"impression {item.text[:40]!r} repeated: kept once")
            continue
        impression.append(item)
    merged = report.model_copy(update={"findings": kept, "impression": impression})
    return merged, notes, reasons


def _regions(segment: Segment, study_description: str) -> frozenset[str]:
    # Body Part Examined first; the series' description, then (current study only) the
    # study's, when it names no region.
    return regions_of(segment.body_part) or regions_of(
        segment.series_description, segment.label) or (
        frozenset() if segment.is_prior else regions_of(study_description))


def _segment(segments: Sequence[Segment], frame: int) -> Segment | None:
    return next((s for s in segments if s.frame_start <= frame < s.frame_stop), None)


def _check_frames(index: int, finding: Finding, segments: Sequence[Segment],
                  frame_count: int, study_description: str) -> tuple[list[Reason], list[int]]:
    """Reasons for bad citations, and the cited frames that support the finding (in range,
    of the current study, showing a region where the site is or an unknown region)."""
    reasons: list[Reason] = []
    good: list[int] = []
    outside = [f for f in finding.frames if not 0 <= f < frame_count]
    if outside:
        reasons.append(Reason("frame-out-of-range",
                              f"{_label(index, finding)} cites frame(s) {outside} outside the "
                              f"sequence of {frame_count}", index + 1))
    wrong: list[str] = []
    for frame in finding.frames:
        seg = _segment(segments, frame)
        if seg is None:
            continue
        regions = _regions(seg, study_description)
        if regions and not site_seen_in(finding.finding_site, regions):
            wrong.append(f"{frame} ({', '.join(sorted(regions))})")
        elif not seg.is_prior:
            good.append(frame)
    if wrong:
        reasons.append(Reason(
            "frame-wrong-region",
            f"{_label(index, finding)} is at {by_key(finding.finding_site).meaning}, but cited "
            f"frame(s) {', '.join(wrong)} do not show it", index + 1))
    return reasons, good


def _check_codes(index: int, finding: Finding, policy: CheckPolicy) -> list[Reason]:
    reasons: list[Reason] = []
    ftype, site = str(finding.finding_type), str(finding.finding_site)
    type_name, site_name = by_key(ftype).meaning, by_key(site).meaning
    where = f"profile {policy.profile}" if policy.profile else "the profile"
    if policy.finding_types is not None and ftype not in policy.finding_types:
        reasons.append(Reason("type-not-allowed",
                              f"{_label(index, finding)}: type {type_name} is not allowed "
                              f"by {where}", index + 1))
    if policy.finding_sites is not None and site not in policy.finding_sites:
        reasons.append(Reason("site-not-allowed",
                              f"{_label(index, finding)}: site {site_name} is not allowed "
                              f"by {where}", index + 1))
    if not type_fits_site(ftype, site):
        reasons.append(Reason("type-site-mismatch",
                              f"{_label(index, finding)}: {type_name} cannot be at "
                              f"{site_name}", index + 1))
    severity = Severity(finding.severity)
    if (ftype == NORMAL_TYPE) != (severity == Severity.NORMAL):
        reasons.append(Reason("severity-type-mismatch",
                              f"{_label(index, finding)} is coded {type_name} with severity "
                              f"{severity.value}", index + 1))
    return reasons


def _check_texts(report: DraftReport) -> list[Reason]:
    reasons: list[Reason] = []
    for index, finding in enumerate(report.findings):
        if is_empty_text(finding.text):
            reasons.append(Reason("boilerplate", f"{_label(index, finding)} says nothing",
                                  index + 1))
    for text in report.triage.critical_findings:
        if is_empty_text(text):
            reasons.append(Reason("boilerplate", f"critical finding {text!r} says nothing"))
    if report.triage.level.alerts_ed:
        level = report.triage.level.value
        for text in report.triage.reasons:
            if is_empty_text(text):
                reasons.append(Reason("boilerplate",
                                      f"{level} triage reason {text!r} says nothing"))
        for item in report.impression:
            if is_empty_text(item.text):
                reasons.append(Reason("boilerplate",
                                      f"impression {item.text!r} says nothing under "
                                      f"{level} triage"))
    return reasons


def check_report(
    report: DraftReport, segments: Sequence[Segment], frame_count: int,
    policy: CheckPolicy | None = None, *, study_description: str = "",
) -> Consistency:
    """Check one answer (see the module's rules); the verdict carries the merged report.

    `study_description`: the current study's, for segments whose headers name no region."""
    policy = policy or CheckPolicy()
    merged, notes, reasons = merge_duplicates(report)
    supported: dict[int, list[int]] = {}
    for index, finding in enumerate(merged.findings):
        reasons += _check_codes(index, finding, policy)
        frame_reasons, good = _check_frames(index, finding, segments, frame_count,
                                            study_description)
        reasons += frame_reasons
        codes_ok = not any(r.finding == index + 1 for r in reasons)
        if good and codes_ok and not is_empty_text(finding.text):
            supported[index] = good
    reasons += _check_texts(merged)
    level = merged.triage.level
    supporting: tuple[int, ...] = ()
    if level.alerts_ed:
        needed = NEEDED[level]
        supporting = tuple(i for i in supported
                           if Severity(merged.findings[i].severity) in needed)
        if not supporting:
            words = " or ".join(sorted(s.value for s in needed))
            reasons.append(Reason(
                "triage-unsupported",
                f"{level.value} triage is not supported: no {words} finding with a valid "
                f"coding and a cited frame of this study that shows its site"))
        supporting = tuple(sorted(supporting, key=lambda i: -_RANK[
            Severity(merged.findings[i].severity)]))
    else:
        for index, finding in enumerate(merged.findings):
            if Severity(finding.severity) == Severity.CRITICAL:
                reasons.append(Reason("critical-under-routine",
                                      f"{_label(index, finding)} is critical under routine "
                                      "triage", index + 1))
    state: State = "inconsistent" if reasons else "consistent"
    return Consistency(state=state, reasons=tuple(reasons), report=merged,
                       merged=tuple(notes), supporting=supporting)


def reask_text(reasons: Sequence[Reason]) -> str:
    """What the model is told when it is asked again (appended to the site instructions)."""
    lines = [f"- {r.text}" for r in reasons[:12]]
    return ("Your previous answer failed radraft's consistency check:\n" + "\n".join(lines)
            + "\nAnswer again. Set triage urgent or critical only if a finding of matching "
            "severity, coded with a fitting type and site, cites frames that show that site; "
            "write what each finding shows, not only a severity word.")


def note_text(verdict: Consistency, *, reasks: int, alert: str, limit: int = 400) -> str:
    """One line for the outputs' readers (SR, ORU, draft text): the check's verdict, at most
    `limit` characters (as many reasons as fit, the triage's first).

    `alert`: "held", "sent anyway" or "" (no alert was due)."""
    if verdict.consistent:
        return ""
    # What the triage rests on first: that is what a reader of the alert or report needs.
    first = ("triage-unsupported", "critical-under-routine")
    ordered = [r.text for r in sorted(verdict.reasons, key=lambda r: r.code not in first)]
    asked = f" after {reasks} re-ask(s)" if reasks else ""
    action = {"held": " ED alert held: AI triage unsupported, radiologist review.",
              "sent anyway": " ED alert sent anyway (alerts.unsupported: send)."}.get(alert, "")
    for count in range(min(len(ordered), 4), 0, -1):
        more = len(ordered) - count
        tail = f"; and {more} more (console)" if more > 0 else ""
        text = (f"radraft consistency check: INCONSISTENT{asked}: "
                f"{'; '.join(ordered[:count])}{tail}.{action}")
        if len(text) <= limit:
            return text
    head = f"radraft consistency check: INCONSISTENT{asked}.{action} "
    return (head + ordered[0])[: max(limit - 3, 0)] + "..."
