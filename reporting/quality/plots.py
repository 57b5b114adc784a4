"""Plots as inline SVG strings (no plotting library): bars with 95 % interval whiskers,
and a 2x2 confusion table. Every label is escaped; the SVG uses attributes only (no style
attribute), so the console's strict CSP shows it."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from radraft.reporting.quality.stats import Estimate

BAR_H, LABEL_W, PLOT_W = 16, 200, 320


def bars(title: str, items: Sequence[tuple[str, Estimate]], *, scale: float = 1.0) -> str:
    """Horizontal bars of estimates in [0, scale], whiskers for their intervals; an
    estimate with too few pairs is drawn hollow."""
    rows = [(label, e) for label, e in items if e.value is not None]
    height = BAR_H * (len(rows) + 2)
    width = LABEL_W + PLOT_W + 190
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
             f'<text x="0" y="12" font-size="12" font-weight="bold">{escape(title)}</text>']

    def x(value: float) -> float:
        return LABEL_W + PLOT_W * max(0.0, min(1.0, value / scale))

    for number, (label, e) in enumerate(rows, 1):
        y = BAR_H * number + 4
        value = float(e.value or 0.0)
        fill = "#4a7bb7" if e.enough else "none"
        parts.append(f'<text x="{LABEL_W - 6}" y="{y + 11}" font-size="11" '
                     f'text-anchor="end">{escape(label)}</text>')
        parts.append(f'<rect x="{LABEL_W}" y="{y + 2}" width="{x(value) - LABEL_W:.1f}" '
                     f'height="{BAR_H - 5}" fill="{fill}" stroke="#4a7bb7"/>')
        if e.low is not None and e.high is not None:
            mid = y + BAR_H / 2
            parts.append(f'<line x1="{x(e.low):.1f}" y1="{mid}" x2="{x(e.high):.1f}" '
                         f'y2="{mid}" stroke="#222"/>')
        note = f"{value:.3f} (n={e.n}{', too few' if not e.enough else ''})"
        parts.append(f'<text x="{LABEL_W + PLOT_W + 4}" y="{y + 11}" '
                     f'font-size="10">{escape(note)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def confusion_table(counts: dict[str, int]) -> str:
    """The ED alert against the final report, as an HTML table."""
    tp, fp, fn, tn = (counts.get(k, 0) for k in ("TP", "FP", "FN", "TN"))
    return ('<table class="confusion"><tr><th></th><th>final: critical</th>'
            '<th>final: not critical</th></tr>'
            f'<tr><th>draft alerted</th><td>{tp} TP</td><td>{fp} FP (false alert)</td></tr>'
            f'<tr><th>no alert</th><td>{fn} FN (missed)</td><td>{tn} TN</td></tr></table>')
