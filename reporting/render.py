"""The draft as people read it: plain text (console, folder destination) and an HTML
fragment (the console). `render_page.render_document` wraps the fragment in a document.

Both start with the notice that the draft is AI-generated and not reviewed. With `facts`
(the exam as the headers and the order state it) the header names the patient, accession,
procedure and date, and cited images are "series 7, image 271" as a viewer shows them;
without (the console re-rendering a stored draft) they are described by their segment.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence

from radraft.reporting.facts import (
    StudyFacts,
    display_date,
    display_name,
    prior_lines,
    series_lines,
)
from radraft.reporting.report_schema import DraftReport, Finding
from radraft.reporting.sequence import FrameSequence

AI_NOTICE = "AI-generated draft, not reviewed by a radiologist."
TITLE = "AI draft — not reviewed"


def _where(seq: FrameSequence, frame: int) -> str:
    """"CT arterial, 2026-11-20, prior" for a cited frame (no facts at hand)."""
    try:
        seg = seq.segment_of(frame)
    except IndexError:
        return f"frame {frame} (outside the sequence)"
    parts = [f"{seg.modality} {seg.label}".strip(), display_date(seg.study_date)]
    if seg.is_prior:
        parts.append("prior")
    return f"frame {frame} ({', '.join(p for p in parts if p)})"


def places(seq: FrameSequence, frames: list[int], facts: StudyFacts | None) -> list[str]:
    """Where people find the cited frames: series/image from the headers when known."""
    if facts is not None:
        return facts.image_places(seq, frames)
    return [_where(seq, f) for f in frames]


def header_rows(facts: StudyFacts | None) -> list[tuple[str, str]]:
    """(label, value) of the document header, from the headers and the order."""
    if facts is None:
        return []
    rows = [("Patient", display_name(facts.patient_name) or "(no name in the header)"),
            ("Patient ID", facts.patient_id or "(none)"),
            ("Accession", facts.accession or "(none)"),
            ("Exam", facts.procedure.meaning)]
    when = facts.exam_line.removeprefix(facts.procedure.meaning).lstrip(", ")
    rows.append(("Exam date", when or "(not in the header)"))
    return rows


def _finding_line(finding: Finding) -> str:
    return f"{finding.system}: {finding.text} [{finding.severity.value}]"


def _sections(report: DraftReport, seq: FrameSequence,
              facts: StudyFacts | None) -> list[tuple[str, list[str]]]:
    # The exam is the order's or the header's and the series read are the headers'; the
    # model's own `exam`/`technique` are never shown (without facts, as when the console
    # re-renders a stored draft, the page around it names the study).
    sections = [("Clinical history", [report.clinical_history]),
                ("Comparison", [report.comparison])]
    if facts is not None:
        sections[:0] = [("Series read", series_lines(seq, facts)),
                        ("Priors compared", prior_lines(seq))]
    return [(title, [t for t in texts if t.strip()]) for title, texts in sections]


def impressions(report: DraftReport) -> list[str]:
    """The impression items in the model's rank order, numbered 1..n by position."""
    items = [i for i in sorted(report.impression, key=lambda i: i.rank) if i.text.strip()]
    return [item.text for item in items]


def _triage(report: DraftReport) -> str:
    line = f"Triage: {report.triage.level.value.upper()}"
    if report.triage.reasons:
        line += " — " + "; ".join(report.triage.reasons)
    return line


def render_text(report: DraftReport, seq: FrameSequence, facts: StudyFacts | None = None,
                notes: Sequence[str] = ()) -> str:
    """A plain-text report, one section per heading; `notes` right after the notice."""
    out = [f"*** {AI_NOTICE} ***", *(f"*** {n} ***" for n in notes if n.strip())]
    rows = header_rows(facts)
    if rows:
        width = max(len(label) for label, _ in rows) + 1
        out += [f"{TITLE.upper()}", *(f"{label + ':':{width}} {value}" for label, value in rows),
                ""]
    out.append(_triage(report))
    if report.triage.critical_findings:
        out.append("Critical: " + "; ".join(report.triage.critical_findings))
    for title, texts in _sections(report, seq, facts):
        if texts:
            out += ["", title.upper(), *texts]
    out += ["", "FINDINGS"]
    for finding in report.findings:
        out.append("- " + _finding_line(finding))
        if finding.frames:
            out.append("  images: " + "; ".join(places(seq, finding.frames, facts)))
    if not report.findings:
        out.append("No findings reported by the model.")
    if report.limitations.strip():
        out += ["", "LIMITATIONS", report.limitations]
    if report.impression:
        out += ["", "IMPRESSION",
                *(f"{n}. {text}" for n, text in enumerate(impressions(report), start=1))]
    if report.recommendations:
        out += ["", "RECOMMENDATIONS", *(f"- {r}" for r in report.recommendations)]
    return "\n".join(out) + "\n"


def render_html(report: DraftReport, seq: FrameSequence,
                frame_urls: Callable[[int], str] | None = None,
                facts: StudyFacts | None = None, notes: Sequence[str] = ()) -> str:
    """An HTML fragment (a <section>); every text escaped, frames linked when URLs are given;
    `notes` right after the notice."""
    e = html.escape

    def frame_link(frame: int) -> str:
        label = e(places(seq, [frame], facts)[0])
        if frame_urls is None:
            return label
        return f'<a href="{e(frame_urls(frame), quote=True)}">{label}</a>'

    level = report.triage.level.value
    out = [f'<section class="radraft-draft triage-{e(level)}">',
           f'<p class="ai-notice"><strong>{e(AI_NOTICE)}</strong></p>',
           *(f'<p class="ai-notice note">{e(n)}</p>' for n in notes if n.strip()),
           f'<p class="triage">Triage (AI): '
           f'<span class="badge badge-{e(level)}">{e(level.upper())}</span>'
           f" {e(_triage(report).partition(' — ')[2])}</p>"]
    if report.triage.critical_findings:
        items = "".join(f"<li>{e(c)}</li>" for c in report.triage.critical_findings)
        out.append(f'<ul class="critical">{items}</ul>')
    for title, texts in _sections(report, seq, facts):
        if texts:
            out.append(f"<h3>{e(title)}</h3>" + "".join(f"<p>{e(t)}</p>" for t in texts))
    out.append("<h3>Findings</h3><ul>")
    for finding in report.findings:
        distinct = list(dict.fromkeys(finding.frames))
        links = "; ".join(dict.fromkeys(frame_link(f) for f in distinct))
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
                   + "".join(f"<li>{e(text)}</li>" for text in impressions(report)) + "</ol>")
    if report.recommendations:
        out.append("<h3>Recommendations</h3><ul>"
                   + "".join(f"<li>{e(r)}</li>" for r in report.recommendations) + "</ul>")
    out.append("</section>")
    return "\n".join(out) + "\n"
