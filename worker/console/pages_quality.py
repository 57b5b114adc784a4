"""The Quality page (admins): drafts against final reports, with intervals; the triage
confusion; the worst pairs side by side; per rule, the evidence to move it from shadow to
live. JSON of the same at /api/quality."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from radraft.reporting.codes import FINDING_TYPES
from radraft.reporting.quality.plots import bars, confusion_table
from radraft.worker.console.deps import ConsoleDep, DbDep, Forbidden, PrincipalDep, render
from radraft.worker.console.quality_queries import quality_view

router = APIRouter(include_in_schema=False)
MEANING = {c.key: c.meaning for c in FINDING_TYPES}
HEADLINE = ("macro_f1", "crg", "rougeL.findings", "bleu4.findings", "chrf.findings",
            "rougeL.impression", "bleu4.impression", "chrf.impression", "time.draft_s",
            "time.alert_s", "time.lead_s")


def _allowed(me: Any) -> None:
    if not me.can("quality.view"):
        raise Forbidden(f"the {me.role} role may not see the Quality page (admins only)")


@router.get("/quality")
def quality(request: Request, console: ConsoleDep, db: DbDep, me: PrincipalDep,
            mode: str = "") -> Any:
    _allowed(me)
    view = quality_view(db, console.settings, console.rules.current(),
                        mode=mode if mode in ("live", "shadow") else "")
    findings = [(MEANING.get(k, k), t["f1"]) for k, t in view.overall.findings.items()
                if t["f1"].value is not None]
    weeks = [(week, s.headline["macro_f1"]) for week, s in view.by_week.items()]
    return render(
        console, request, "quality.html", v=view, headline=HEADLINE,
        findings_svg=bars("F1 per finding (95 % CI; hollow: too few to judge)", findings),
        weeks_svg=bars("macro-F1 by week (95 % CI)", weeks),
        confusion=confusion_table(view.overall.confusion), meaning=MEANING,
    )


@router.get("/api/quality", include_in_schema=True)
def quality_api(console: ConsoleDep, db: DbDep, me: PrincipalDep, mode: str = "",
                ) -> dict[str, Any]:
    """The Quality page's estimates as JSON (no report text)."""
    _allowed(me)
    view = quality_view(db, console.settings, console.rules.current(),
                        mode=mode if mode in ("live", "shadow") else "")
    return {
        "since": view.since.isoformat(), "mode": view.mode or "all", "pairs": view.n,
        "overall": view.overall.as_dict(),
        "by_profile": {k: v.as_dict() for k, v in view.by_profile.items()},
        "by_modality": {k: v.as_dict() for k, v in view.by_modality.items()},
        "by_week": {k: v.as_dict() for k, v in view.by_week.items()},
        "rules": [{"rule": r.rule, "mode": r.mode, "pairs": r.n, "ready": r.ready,
                   "why": r.why, "missed_critical": r.missed_critical,
                   "triage_sensitivity": r.triage_sensitivity.as_dict(),
                   "triage_ppv": r.triage_ppv.as_dict(), "macro_f1": r.macro_f1.as_dict()}
                  for r in view.rules],
    }
