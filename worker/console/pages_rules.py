"""The rules page: the file, its validation, a test against a received study; saving an
edited file and reloading are for admins."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from sqlalchemy import select

from radraft.core.db import Study
from radraft.worker.console.actions import (
    ActionError,
    reload_rules,
    rules_view,
    save_rules,
    try_rules,
)
from radraft.worker.console.auth import Principal
from radraft.worker.console.deps import ConsoleDep, DbDep, PrincipalDep, form_action, render

router = APIRouter(include_in_schema=False)

EditRules = Annotated[Principal, Depends(form_action("rules.edit"))]


def _recent(console: ConsoleDep) -> list[tuple[str, str]]:
    """Recently received studies for the test form's picker (UID, what it is)."""
    with console.sessions() as session:
        rows = session.execute(select(Study.study_uid, Study.accession, Study.modalities,
                                      Study.study_description)
                               .where(Study.source == "received")
                               .order_by(Study.last_received_at.desc()).limit(50)).all()
    return [(uid, " ".join(p for p in (acc, mod, desc) if p)) for uid, acc, mod, desc in rows]


def _page(request: Request, console: ConsoleDep, status_code: int = 200, **extra: Any) -> Any:
    view = rules_view(console.settings, console.rules)
    if extra.get("edit_text") is None:
        extra["edit_text"] = view.text
    return render(console, request, "rules.html", status_code=status_code, v=view,
                  recent=_recent(console), **extra)


@router.get("/rules")
def rules(request: Request, console: ConsoleDep, _me: PrincipalDep,
          study_uid: str = "") -> Any:
    return _page(request, console, test_uid=study_uid)


@router.post("/rules/test")
def test(request: Request, console: ConsoleDep, db: DbDep, _me: EditRules,
         study_uid: Annotated[str, Form()], text: Annotated[str, Form()] = "") -> Any:
    """Admins only (the edited text, when given, else the rules in force): a test runs
    a user's YAML and patterns, in a child process with limits (rules.sandbox)."""
    try:
        result = try_rules(db, console.settings, console.rules, study_uid, text)
    except ActionError as exc:
        return _page(request, console, exc.status, test_error=str(exc), test_uid=study_uid,
                     edit_text=text or None)
    return _page(request, console, result=result, test_uid=study_uid,
                 edit_text=text or None)


@router.post("/rules/save")
def save(request: Request, console: ConsoleDep, db: DbDep, me: EditRules,
         text: Annotated[str, Form()]) -> Any:
    try:
        save_rules(db, console.settings, console.rules, text, me)
    except ActionError as exc:
        return _page(request, console, 400, save_error=str(exc), edit_text=text)
    return _page(request, console, msg="rules saved and in force")


@router.post("/rules/reload")
def reload(request: Request, console: ConsoleDep, db: DbDep, me: EditRules) -> Any:
    view = reload_rules(db, console.settings, console.rules, me)
    msg = "reloaded" if view.valid else "the file is invalid: the previous rules stay in force"
    return _page(request, console, msg=msg)
