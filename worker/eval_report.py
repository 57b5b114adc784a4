"""`radraft eval`'s outputs: scores.csv (estimates with intervals, overall and by profile,
modality and finding) and a self-contained report.html (inline SVG, embedded pictures)."""

from __future__ import annotations

import base64
import csv
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from radraft.reporting.codes import FINDING_TYPES
from radraft.reporting.quality.plots import bars, confusion_table
from radraft.reporting.quality.stats import MIN_PAIRS, Estimate
from radraft.reporting.quality.summary import PairRecord, Summary, summarize

MEANING = {c.key: c.meaning for c in FINDING_TYPES}
HEADLINE_ORDER = ("macro_f1", "crg", "bleu4.findings", "rougeL.findings", "chrf.findings",
                  "bleu4.impression", "rougeL.impression", "chrf.impression", "time.draft_s")
WORST = 10
SHEET_LIMIT = 2 << 20  # contact sheets above this are linked, not embedded


def records(rows: Iterable[dict[str, Any]]) -> list[PairRecord]:
    return [PairRecord(r["scores"], r["draft_labels"], r["final_labels"], r["triage"])
            for r in rows if r.get("status") == "scored"]


def groups(rows: Sequence[dict[str, Any]], key: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row.get("status") == "scored":
            out.setdefault(str(row.get(key) or "?"), []).append(row)
    return dict(sorted(out.items()))


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _csv_rows(scope: str, group: str, summary: Summary) -> Iterable[list[str]]:
    for name, e in summary.headline.items():
        yield [scope, group, name, _fmt(e.value), _fmt(e.low), _fmt(e.high), str(e.n),
               e.method, e.verdict, json.dumps(e.counts, sort_keys=True)]
    for name, e in summary.triage.items():
        yield [scope, group, f"triage.{name}", _fmt(e.value), _fmt(e.low), _fmt(e.high),
               str(e.n), e.method, e.verdict, json.dumps(e.counts, sort_keys=True)]


def write_scores(out: Path, rows: Sequence[dict[str, Any]], vocabulary: Sequence[str],
                 ) -> Summary:
    """scores.csv; returns the overall summary."""
    overall = summarize(records(rows), vocabulary)
    with (out / "scores.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["scope", "group", "score", "value", "ci_low", "ci_high", "n",
                         "interval", "verdict", "counts"])
        writer.writerows(_csv_rows("all", "", overall))
        for key in ("profile", "modality"):
            for group, members in groups(rows, key).items():
                writer.writerows(_csv_rows(key, group, summarize(
                    records(members), vocabulary, findings=False)))
        for finding, table in overall.findings.items():
            for name, e in table.items():
                writer.writerow(["finding", finding, name, _fmt(e.value), _fmt(e.low),
                                 _fmt(e.high), str(e.n), e.method, e.verdict,
                                 json.dumps(e.counts, sort_keys=True)])
    return overall


def _estimate_table(summary: Summary, names: Sequence[str]) -> str:
    cells = []
    for name in names:
        e = summary.headline.get(name) or summary.triage.get(name.removeprefix("triage."))
        if e is None:
            continue
        interval = f"{e.low:.3f} – {e.high:.3f}" if e.low is not None and e.high is not None \
            else "—"
        value = "—" if e.value is None else f"{e.value:.3f}"
        verdict = f'<span class="too-few">{escape(e.verdict)}</span>' if e.verdict else ""
        cells.append(f"<tr><td>{escape(name)}</td><td class='num'>{value}</td>"
                     f"<td class='num'>{interval}</td><td class='num'>{e.n}</td>"
                     f"<td>{verdict}</td></tr>")
    return ("<table class='quality'><tr><th>score</th><th>value</th><th>95 % CI</th>"
            "<th>n</th><th></th></tr>" + "".join(cells) + "</table>")


def _group_section(title: str, rows: Sequence[dict[str, Any]], key: str,
                   vocabulary: Sequence[str]) -> str:
    parts = [f"<h2>{escape(title)}</h2>"]
    items: list[tuple[str, Estimate]] = []
    for group, members in groups(rows, key).items():
        summary = summarize(records(members), vocabulary, findings=False)
        items.append((f"{group} macro-F1", summary.headline["macro_f1"]))
        items.append((f"{group} ROUGE-L findings", summary.headline["rougeL.findings"]))
    parts.append(bars(f"{title}: macro-F1 and ROUGE-L (95 % CI)", items))
    return "".join(parts)


def _sheet(out: Path, row: dict[str, Any]) -> str:
    from radraft.worker.eval_run import case_folder

    path = case_folder(out, str(row["id"])) / "contact_sheet.png"
    if not path.is_file() or path.stat().st_size > SHEET_LIMIT:
        return ""
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="contact sheet" width="320" src="data:image/png;base64,{data}">'


def _worst(out: Path, rows: Sequence[dict[str, Any]]) -> str:
    scored = [r for r in rows if r.get("status") == "scored"]
    scored.sort(key=lambda r: (r["scores"].get("agreement.f1", 0.0),
                               r["scores"].get("rougeL.findings", 0.0)))
    parts = ["<h2>Worst pairs (draft and final side by side)</h2>"]
    for row in scored[:WORST]:
        s = row["scores"]
        parts.append(
            f"<h3>{escape(str(row['id']))} · {escape(str(row.get('profile', '')))} · "
            f"agreement F1 {s.get('agreement.f1', 0.0):.2f} · ROUGE-L findings "
            f"{s.get('rougeL.findings', 0.0):.2f} · triage {escape(row['triage'])}</h3>"
            "<div class='pair-side'><div><h4>Draft</h4><pre>"
            f"{escape(row.get('draft_findings', ''))}\n\n{escape(row.get('draft_impression', ''))}"
            f"</pre>{_sheet(out, row)}</div><div><h4>Final report</h4><pre>"
            f"{escape(row.get('final_text', ''))}</pre></div></div>")
    return "".join(parts)


STYLE = """body{font-family:sans-serif;margin:2em;max-width:1100px}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .5em}
td.num{text-align:right}.too-few{color:#8a6d00}.pair-side{display:grid;
grid-template-columns:1fr 1fr;gap:1em}pre{white-space:pre-wrap;background:#f7f7f7;
padding:.5em}.error{color:#a00}"""


def write_html(out: Path, rows: Sequence[dict[str, Any]], vocabulary: Sequence[str],
               overall: Summary) -> Path:
    errors = [r for r in rows if r.get("status") != "scored"]
    findings = [(f"{MEANING.get(k, k)}", t["f1"]) for k, t in overall.findings.items()
                if t["f1"].value is not None]
    extractor = [r["extractor_agreement"] for r in rows if r.get("extractor_agreement")]
    right = sum(e["right"] for e in extractor)
    total = sum(e["total"] for e in extractor)
    html = [
        "<!doctype html><html><head><meta charset='utf-8'><title>radraft eval</title>"
        f"<style>{STYLE}</style></head><body>",
        "<h1>radraft eval: drafts against final reports</h1>",
        f"<p>{overall.n} pairs scored, {len(errors)} not scored; written "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Intervals are 95 % (Wilson for "
        f"proportions, seeded bootstrap for means and corpus scores). Below {MIN_PAIRS} "
        "pairs an estimate is marked <span class='too-few'>too few to judge</span>. Text "
        "overlap (BLEU, ROUGE-L, chrF) is not correctness; the clinical agreement scores "
        "depend on the label extractor (README, \"Quality\").</p>",
        "<h2>Headline scores</h2>", _estimate_table(overall, HEADLINE_ORDER),
        "<h2>Triage: the ED alert against critical findings of the final report</h2>",
        confusion_table(overall.confusion),
        _estimate_table(overall, ("triage.sensitivity", "triage.specificity", "triage.ppv",
                                  "triage.npv")),
        "<h2>Per finding</h2>", bars("F1 per finding (95 % CI)", findings),
        _group_section("Per profile", rows, "profile", vocabulary),
        _group_section("Per modality", rows, "modality", vocabulary),
    ]
    if total:
        html.append(f"<p>Label extractor against the radiologists' labels: {right}/{total} "
                    f"labels agree ({right / total:.1%}).</p>")
    html.append(_worst(out, rows))
    if errors:
        html.append("<h2 class='error'>Not scored</h2><table><tr><th>case</th><th>line</th>"
                    "<th>error</th></tr>" + "".join(
                        f"<tr><td>{escape(str(r['id']))}</td><td>{r.get('line', '')}</td>"
                        f"<td>{escape(str(r.get('error', '')))}</td></tr>" for r in errors)
                    + "</table>")
    html.append("</body></html>")
    path = out / "report.html"
    path.write_text("".join(html), encoding="utf-8")
    return path
