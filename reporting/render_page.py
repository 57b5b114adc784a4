"""draft.html: the draft as a complete HTML document (doctype, charset, inline CSS) with a
header a reader checks first: patient, accession, exam and date, the AI notice, the triage."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from radraft.reporting.facts import StudyFacts
from radraft.reporting.render import AI_NOTICE, TITLE, header_rows, render_html
from radraft.reporting.report_schema import DraftReport
from radraft.reporting.sequence import FrameSequence

# Triage badge colours (text on background), readable when printed in grey too.
_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       margin: 0; color: #1d2330; background: #f4f5f7; }
main { max-width: 860px; margin: 24px auto; background: #fff; padding: 24px 32px;
       border: 1px solid #d8dce3; border-radius: 6px; }
.banner { background: #7a1f1f; color: #fff; padding: 10px 32px; font-weight: 700;
          letter-spacing: .02em; }
h1 { font-size: 20px; margin: 0 0 12px; }
h3 { font-size: 15px; margin: 20px 0 6px; text-transform: uppercase; color: #3d4657;
     border-bottom: 1px solid #e3e6eb; padding-bottom: 3px; }
table.header { border-collapse: collapse; margin-bottom: 8px; }
table.header th { text-align: left; padding: 2px 16px 2px 0; color: #5a6475;
                  font-weight: 600; }
table.header td { padding: 2px 0; }
.ai-notice { color: #7a1f1f; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 10px; font-weight: 700;
         font-size: 13px; color: #fff; }
.badge-critical { background: #b00020; }
.badge-urgent { background: #d35400; }
.badge-routine { background: #2e7d32; }
ul.critical li { color: #b00020; font-weight: 600; }
li.severity-critical { color: #b00020; }
li.severity-significant { color: #8a4b00; }
.images { color: #3b5b8c; white-space: nowrap; }
footer { margin-top: 24px; font-size: 12px; color: #6b7382; }
"""


def render_document(report: DraftReport, seq: FrameSequence, facts: StudyFacts, *,
                    generated: datetime, timezone: str, notes: Sequence[str] = ()) -> str:
    """A whole page: the header from `facts`, then the draft (`render_html`)."""
    e = html.escape
    rows = "".join(f"<tr><th>{e(label)}</th><td>{e(value)}</td></tr>"
                   for label, value in header_rows(facts))
    when = generated.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M %Z")
    title = f"{TITLE}: {facts.procedure.meaning}"
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f'<div class="banner">{e(AI_NOTICE)}</div>',
        "<main>",
        f"<h1>{e(TITLE)}</h1>",
        f'<table class="header">{rows}</table>',
        render_html(report, seq, facts=facts, notes=notes).rstrip(),
        f"<footer>Drafted {e(when)} by a model; patient, exam and image references come "
        "from the DICOM headers and the order, the findings from the model.</footer>",
        "</main>",
        "</body>",
        "</html>",
        "",
    ])
