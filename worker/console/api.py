"""The JSON API under /api (described by /api/openapi.json, behind login like the pages).

Log in with POST /api/login (JSON); every changing call then needs the session's CSRF token
in the X-CSRF-Token header (returned by /api/login and GET /api/me).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from radraft.worker.console.actions import (
    acknowledge,
    cancel_delivery,
    reload_rules,
    retry_delivery,
    rules_view,
    save_rules,
    try_rules,
)
from radraft.worker.console.auth import PERMISSIONS, Principal
from radraft.worker.console.deps import COOKIE, ConsoleDep, DbDep, PrincipalDep, api_action
from radraft.worker.console.ops_queries import DELIVERY_FILTERS, delivery_rows, ed_rows, queues_view
from radraft.worker.console.pages_login import (
    LoginRefused,
    client_address,
    login_user,
    set_session_cookie,
)
from radraft.worker.console.pages_studies import Hours, study_filter
from radraft.worker.console.queries import study_detail, study_rows
from radraft.worker.console.views import (
    DeliveryRow,
    EdRow,
    QueuesView,
    RulesView,
    RuleTestResult,
    StudyDetail,
    StudyRow,
)

router = APIRouter(prefix="/api", tags=["console"])

ManageDeliveries = Annotated[Principal, Depends(api_action("deliveries.manage"))]
EditRules = Annotated[Principal, Depends(api_action("rules.edit"))]
AckAlerts = Annotated[Principal, Depends(api_action("alerts.ack"))]
AnyRole = Annotated[Principal, Depends(api_action())]


class Login(BaseModel):
    username: str
    password: str


class Me(BaseModel):
    username: str
    role: str
    csrf_token: str
    permissions: list[str]


class StateAnswer(BaseModel):
    id: int
    state: str


class RulesText(BaseModel):
    text: str


class RuleTest(BaseModel):
    study_uid: str
    text: str = ""


def _me(principal: Principal) -> Me:
    return Me(username=principal.username, role=principal.role,
              csrf_token=principal.csrf_token,
              permissions=sorted(PERMISSIONS.get(principal.role, frozenset())))


@router.post("/login", response_model=Me,
             responses={401: {"description": "wrong user name or password"},
                        429: {"description": "too many failed logins"}})
def login(body: Login, request: Request, console: ConsoleDep, db: DbDep) -> Response:
    """A JSON body (a cross-site form cannot send one without CORS, which the console does
    not allow): opens a session cookie and returns the CSRF token."""
    try:
        value = login_user(console, db, body.username, body.password,
                           client_address(request))
    except LoginRefused as exc:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)
    principal = console.store.resolve(db, value)
    assert principal is not None
    response = JSONResponse(_me(principal).model_dump())
    set_session_cookie(response, request, value, console)
    return response


@router.post("/logout", status_code=204)
def logout(request: Request, console: ConsoleDep, db: DbDep, _me: AnyRole) -> Response:
    console.store.close(db, request.cookies.get(COOKIE))
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/me", response_model=Me)
def me(principal: PrincipalDep) -> Me:
    return _me(principal)


@router.get("/studies", response_model=list[StudyRow])
def studies(db: DbDep, _me: PrincipalDep, q: str = "", job_state: str = "", rule: str = "",
            modality: str = "", hours: Hours = None, flagged: bool = False,
            ) -> list[StudyRow]:
    """Received studies, newest first (at most 200): received, stable, rule, job state,
    timings. Filters as on the page."""
    return study_rows(db, study_filter(q, job_state, rule, modality, hours, flagged))


@router.get("/studies/{study_uid:path}", response_model=StudyDetail)
def study(db: DbDep, _me: PrincipalDep, study_uid: str) -> StudyDetail:
    detail = study_detail(db, study_uid)
    if detail is None:
        raise HTTPException(404, f"study {study_uid} is not in the index")
    return detail


@router.get("/queues", response_model=QueuesView)
def queues(db: DbDep, _me: PrincipalDep) -> QueuesView:
    return queues_view(db)


@router.get("/deliveries", response_model=list[DeliveryRow])
def deliveries(db: DbDep, _me: PrincipalDep, state: str = "attention") -> list[DeliveryRow]:
    """`state`: attention (retrying, failed, expired), retrying, failed, expired, pending,
    delivered, cancelled or all."""
    if state not in DELIVERY_FILTERS:
        raise HTTPException(400, f"state must be one of {', '.join(DELIVERY_FILTERS)}")
    return delivery_rows(db, state)


@router.post("/deliveries/{delivery_id}/retry", response_model=StateAnswer)
def retry(console: ConsoleDep, db: DbDep, who: ManageDeliveries, delivery_id: int,
          ) -> StateAnswer:
    return StateAnswer(id=delivery_id, state=retry_delivery(
        db, console.settings, console.enqueue, delivery_id, who))


@router.post("/deliveries/{delivery_id}/cancel", response_model=StateAnswer)
def cancel(db: DbDep, who: ManageDeliveries, delivery_id: int) -> StateAnswer:
    return StateAnswer(id=delivery_id, state=cancel_delivery(db, delivery_id, who))


@router.get("/rules", response_model=RulesView)
def rules(console: ConsoleDep, _me: PrincipalDep) -> RulesView:
    return rules_view(console.settings, console.rules)


@router.post("/rules/test", response_model=RuleTestResult)
def test_rules(body: RuleTest, console: ConsoleDep, db: DbDep, _me: EditRules,
               ) -> RuleTestResult:
    return try_rules(db, console.settings, console.rules, body.study_uid, body.text)


@router.put("/rules", response_model=RulesView)
def put_rules(body: RulesText, console: ConsoleDep, db: DbDep, who: EditRules) -> RulesView:
    return save_rules(db, console.settings, console.rules, body.text, who)


@router.post("/rules/reload", response_model=RulesView)
def reload(console: ConsoleDep, db: DbDep, who: EditRules) -> RulesView:
    return reload_rules(db, console.settings, console.rules, who)


@router.get("/ed", response_model=list[EdRow])
def ed(console: ConsoleDep, db: DbDep, _me: PrincipalDep) -> list[EdRow]:
    return ed_rows(db, console.settings)


@router.post("/ed/{draft_id}/ack", response_model=StateAnswer)
def ack(db: DbDep, who: AckAlerts, draft_id: int) -> StateAnswer:
    draft = acknowledge(db, draft_id, who)
    return StateAnswer(id=draft.id, state=f"acknowledged by {draft.acknowledged_by}")


@router.get("/openapi.json", include_in_schema=False)
def openapi(request: Request, _me: PrincipalDep) -> dict[str, Any]:
    schema: dict[str, Any] = request.app.openapi()
    return schema
