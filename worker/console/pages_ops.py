"""Pages: queues and workers, deliveries (retry / cancel for admins), the ED board
(acknowledge for the ED)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse

from radraft.worker.console.actions import acknowledge, cancel_delivery, retry_delivery
from radraft.worker.console.auth import Principal
from radraft.worker.console.deps import ConsoleDep, DbDep, PrincipalDep, form_action, render
from radraft.worker.console.ops_queries import DELIVERY_FILTERS, delivery_rows, ed_rows, queues_view

router = APIRouter(include_in_schema=False)

ManageDeliveries = Annotated[Principal, Depends(form_action("deliveries.manage"))]
AckAlerts = Annotated[Principal, Depends(form_action("alerts.ack"))]


def _back(path: str, message: str) -> RedirectResponse:
    # The message names row ids and states only (it travels in the URL).
    return RedirectResponse(f"{path}{'&' if '?' in path else '?'}msg={message}",
                            status_code=303)


@router.get("/queues")
def queues(request: Request, console: ConsoleDep, db: DbDep, _me: PrincipalDep) -> Any:
    return render(console, request, "queues.html", v=queues_view(db))


@router.get("/deliveries")
def deliveries(request: Request, console: ConsoleDep, db: DbDep, _me: PrincipalDep,
               state: str = "attention", msg: str = "") -> Any:
    which = state if state in DELIVERY_FILTERS else "attention"
    return render(console, request, "deliveries.html", rows=delivery_rows(db, which),
                  state=which, filters=DELIVERY_FILTERS, msg=msg)


@router.post("/deliveries/{delivery_id}/retry")
def retry(console: ConsoleDep, db: DbDep, me: ManageDeliveries, delivery_id: int,
          ) -> RedirectResponse:
    retry_delivery(db, console.settings, console.enqueue, delivery_id, me)
    return _back("/deliveries", f"delivery {delivery_id} queued to send again")


@router.post("/deliveries/{delivery_id}/cancel")
def cancel(db: DbDep, me: ManageDeliveries, delivery_id: int) -> RedirectResponse:
    cancel_delivery(db, delivery_id, me)
    return _back("/deliveries", f"delivery {delivery_id} cancelled")


@router.get("/ed")
def ed_board(request: Request, console: ConsoleDep, db: DbDep, _me: PrincipalDep,
             msg: str = "") -> Any:
    return render(console, request, "ed.html", rows=ed_rows(db, console.settings),
                  after=console.settings.web.escalate_after_minutes, msg=msg)


@router.post("/ed/{draft_id}/ack")
def ack(db: DbDep, me: AckAlerts, draft_id: int) -> RedirectResponse:
    acknowledge(db, draft_id, me)
    return _back("/ed", f"alert of draft {draft_id} acknowledged")
