"""The draft as people read it: plain text (console, folder destination) and HTML.

Both start with the notice that the draft is AI-generated and not reviewed; cited frames
are described by their segment (series label, date, prior or not).
"""

from __future__ import annotations

import html
from collections.abc import Callable

from radraft.reporting.report_schema import DraftReport, Finding
from radraft.reporting.sequence import FrameSequence

AI_NOTICE = "AI-generated draft, not reviewed by a radiologist."


def _where(seq: FrameSequence, frame: int) -> str:
    """"frame 12 (CT arterial, 2026-11-20, prior)" for a cited frame."""
    try:
        seg = seq.segment_of(frame)
    except IndexError:
        return f"frame {frame}"
    date = seg.study_date
    if len(date) == 8 and date.isdigit():
        date = f"{date[:4]}-{date[4:6]}-{date[6:]}"
    parts = [f"{seg.modality} {seg.label}".strip(), date]
    if seg.is_prior:
        parts.append("prior")
    return f"frame {frame} ({', '.join(p for p in parts if p)})"


def _finding_line(finding: Finding) -> str:
    return f"{finding.system}: {finding.text} [{finding.severity.value}]"


def _sections(report: DraftReport) -> list[tuple[str, list[str]]]:
    sections = [
        ("Exam", [report.exam]), ("Clinical history", [report.clinical_history]),
        ("Technique", [report.technique]), ("Comparison", [report.comparison]),
    ]
    return [(title, [t for t in texts if t.strip()]) for title, texts in sections]


def _impressions(report: DraftReport) -> list[str]:
    return [f"{i.rank}. {i.text}" for i in sorted(report.impression, key=lambda i: i.rank)]


def _triage(report: DraftReport) -> str:
    line = f"Triage: {report.triage.level.value.upper()}"
    if report.triage.reasons:
        line += " — " + "; ".join(report.triage.reasons)
    return line


def render_text(report: DraftReport, seq: FrameSequence) -> str:
    """A plain-text report, one section per heading."""
    out = [f"*** {AI_NOTICE} ***", _triage(report)]
    if report.triage.critical_findings:
        out.append("Critical: " + "; ".join(report.triage.critical_findings))
    for title, texts in _sections(report):
        if texts:
            out += ["", title.upper(), *texts]
    out += ["", "FINDINGS"]
    for finding in report.findings:
        out.append("- " + _finding_line(finding))
        if finding.frames:
            out.append("  images: " + ", ".join(_where(seq, f) for f in finding.frames))
    if not report.findings:
        out.append("No findings reported by the model.")
    if report.limitations.strip():
        out += ["", "LIMITATIONS", report.limitations]
    if report.impression:
        out += ["", "IMPRESSION", *_impressions(report)]
    if report.recommendations:
        out += ["", "RECOMMENDATIONS", *(f"- {r}" for r in report.recommendations)]
    return "\n".join(out) + "\n"


def render_html(report: DraftReport, seq: FrameSequence,
                frame_urls: Callable[[int], str] | None = None) -> str:
    """An HTML fragment (a <section>); every text escaped, frames linked when URLs are given."""
    e = html.escape

    def frame_link(frame: int) -> str:
        label = e(_where(seq, frame))
        if frame_urls is None:
            return label
        return f'<a href="{e(frame_urls(frame), quote=True)}">{label}</a>'

    level = report.triage.level.value
    out = [f'<section class="radraft-draft triage-{e(level)}">',
           f'<p class="ai-notice"><strong>{e(AI_NOTICE)}</strong></p>',
           f'<p class="triage">{e(_triage(report))}</p>']
    if report.triage.critical_findings:
        items = "".join(f"<li>{e(c)}</li>" for c in report.triage.critical_findings)
        out.append(f'<ul class="critical">{items}</ul>')
    for title, texts in _sections(report):
        if texts:
            out.append(f"<h3>{e(title)}</h3>" + "".join(f"<p>{e(t)}</p>" for t in texts))
    out.append("<h3>Findings</h3><ul>")
    for finding in report.findings:
        links = ", ".join(frame_link(f) for f in finding.frames)
        images = f' <span class="images">({links})</span>' if links else ""
        out.append(f'<li class="severity-{e(finding.severity.value)}">'
                   f"{e(_finding_line(finding))}{images}</li>")
    if not report.findings:
        out.append("<li>No findings reported by the model.</li>")
    out.append("</ul>")
    if report.limitations.strip():
        out.append(f"<h3>Limitations</h3><p>{e(report.limitations)}</p>")
    if report.impression:
        out.append("<h3>Impression</h3><ol>"
                   + "".join(f"<li>{e(i.text)}</li>" for i in
                             sorted(report.impression, key=lambda i: i.rank)) + "</ol>")
    if report.recommendations:
        out.append("<h3>Recommendations</h3><ul>"
                   + "".join(f"<li>{e(r)}</li>" for r in report.recommendations) + "</ul>")
    out.append("</section>")
    return "\n".join(out) + "\n"
