"""Pages: the studies list, one study, and the draft pictures it shows."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from radraft.core.db import Delivery, DraftImage
from radraft.worker.console.deps import ConsoleDep, DbDep, PrincipalDep, render
from radraft.worker.console.queries import (
    JOB_STATES,
    RULE_ACTIONS,
    StudyFilter,
    study_detail,
    study_rows,
)

router = APIRouter(include_in_schema=False)

# The "received in the last N hours" filter: a finite, positive number of at most ten years
# (nan, inf or 1e309 would reach timedelta and fail there).
Hours = Annotated[float | None, Query(gt=0, le=24 * 3660, allow_inf_nan=False)]


def study_filter(q: str = "", job_state: str = "", rule: str = "", modality: str = "",
                 hours: float | None = None, flagged: bool = False) -> StudyFilter:
    return StudyFilter(q=q, job_state=job_state, rule=rule, modality=modality, hours=hours,
                       flagged=flagged)


@router.get("/")
def home(_me: PrincipalDep) -> RedirectResponse:
    return RedirectResponse("/studies", status_code=303)


@router.get("/studies")
def studies(request: Request, console: ConsoleDep, db: DbDep, _me: PrincipalDep,
            q: str = "", job_state: str = "", rule: str = "", modality: str = "",
            hours: Hours = None, flagged: bool = False,
            ) -> Any:
    flt = study_filter(q, job_state, rule, modality, hours, flagged)
    return render(console, request, "studies.html", rows=study_rows(db, flt), flt=flt,
                  job_states=JOB_STATES, rule_actions=RULE_ACTIONS)


# `:path`: a UID sent with a '/' (refused by the node now, maybe stored before) still opens.
@router.get("/studies/{study_uid:path}")
def study(request: Request, console: ConsoleDep, db: DbDep, _me: PrincipalDep,
          study_uid: str) -> Any:
    detail = study_detail(db, study_uid)
    if detail is None:
        return render(console, request, "error.html", status_code=404,
                      message=f"study {study_uid} is not in the index")
    return render(console, request, "study.html", d=detail)


def _png(data: bytes | None) -> Response:
    if data is None:
        return Response("no such image", status_code=404, media_type="text/plain")
    return Response(data, media_type="image/png")


@router.get("/drafts/{draft_id}/sheet.png")
def contact_sheet(db: DbDep, _me: PrincipalDep, draft_id: int) -> Response:
    data = db.scalar(select(DraftImage.png).where(DraftImage.draft_id == draft_id,
                                                  DraftImage.kind == "sheet"))
    if data is None:  # a draft from before draft_image: its folder-outbox copy
        data = db.scalar(select(Delivery.payload).where(Delivery.draft_id == draft_id,
                                                        Delivery.payload_kind == "sheet")
                         .limit(1))
    return _png(data or None)


@router.get("/drafts/{draft_id}/frames/{index}.png")
def key_frame(db: DbDep, _me: PrincipalDep, draft_id: int, index: int) -> Response:
    return _png(db.scalar(select(DraftImage.png).where(
        DraftImage.draft_id == draft_id, DraftImage.kind == "frame",
        DraftImage.frame_index == index)))
