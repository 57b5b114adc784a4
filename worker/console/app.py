"""The console's FastAPI app: `create_app(settings, sessions)`.

Pages (HTML, Jinja2) and the JSON API read the same query layer; every page but /healthz,
/readyz and /metrics needs a login. Security headers on every answer: a strict CSP (no
inline script), no framing, no referrer, and `no-store` so PHI stays out of caches.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException

from radraft.core.settings import Settings
from radraft.dicom_node.rules import RulesWatcher
from radraft.worker.console import (
    api,
    dicomweb,
    health,
    pages_login,
    pages_ops,
    pages_quality,
    pages_rules,
    pages_studies,
)
from radraft.worker.console.actions import ActionError
from radraft.worker.console.auth import SessionStore
from radraft.worker.console.deps import Console, Forbidden, NotLoggedIn, ReadyCheck, render
from radraft.worker.console.metrics import make_registry
from radraft.worker.enqueue import Enqueue, WakeUp

log = logging.getLogger("radraft.worker.console")

HERE = Path(__file__).resolve().parent
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")


def _no_enqueue(_wake: WakeUp) -> None:
    """Without a broker the sweeper sends the wake-up (rows are the source of truth)."""


def viewer_link(template: str) -> Callable[..., str]:
    """`viewer_url(study_uid, series_uid="", sop_uid="")` for the templates: the site's
    viewer (`viewer.url_template`) with URL-encoded UIDs, or "" when none is configured."""

    def viewer_url(study_uid: str, series_uid: str = "", sop_uid: str = "") -> str:
        if not template:
            return ""
        return template.format(study_uid=quote(study_uid, safe=""),
                               series_uid=quote(series_uid, safe=""),
                               sop_uid=quote(sop_uid, safe=""))

    return viewer_url


def _templates(settings: Settings) -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    zone = ZoneInfo(settings.site.timezone)

    def local(value: datetime | None) -> str:
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if value else "—"

    def seconds(value: float | None) -> str:
        if value is None:
            return "—"
        return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"

    templates.env.globals["viewer_url"] = viewer_link(settings.viewer.url_template)
    # A UID in a link: every character but the unreserved ones percent-encoded, '/' too (a
    # browser would otherwise resolve `..` segments of a hostile UID before sending).
    templates.env.filters["urlpart"] = lambda value: quote(str(value), safe="")
    templates.env.filters["local"] = local
    templates.env.filters["seconds"] = seconds
    templates.env.globals["timezone"] = settings.site.timezone
    return templates


def create_app(
    settings: Settings, sessions: sessionmaker[Session], *, rules: RulesWatcher | None = None,
    enqueue: Enqueue | None = None, ready_checks: dict[str, ReadyCheck] | None = None,
) -> FastAPI:
    """The console app. `rules`: the watcher `radraft serve` runs (so a reload here is the
    node's reload); `enqueue`: publishes delivery wake-ups (default: leave them to the
    sweeper)."""
    if rules is None:
        rules = RulesWatcher(settings.rules_file, timezone=settings.site.timezone,
                             profiles=settings.profiles.keys(),
                             destinations=settings.destinations.keys())
    # An empty key: a random one per start (sessions end with the process).
    key = settings.web.secret_key.get_secret_value() or secrets.token_urlsafe(32)
    console = Console(
        settings=settings, sessions=sessions, rules=rules, enqueue=enqueue or _no_enqueue,
        templates=_templates(settings), store=SessionStore(key),
        ready_checks=ready_checks if ready_checks is not None
        else health.default_checks(settings, sessions),
    )
    app = FastAPI(title="radraft console", version="1", openapi_url=None, docs_url=None,
                  redoc_url=None,
                  description="Studies, drafts, deliveries, routing rules and the ED board.")
    app.state.console = console
    app.state.metrics = make_registry(sessions, settings)
    app.state.stow = None
    if settings.dicomweb.senders:
        from radraft.dicom_node.stow_receive import stow_receiver_for

        app.state.stow = stow_receiver_for(settings)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    for module in (health, pages_login, pages_studies, pages_ops, pages_rules, pages_quality,
                   api, dicomweb):
        app.include_router(module.router)
    _handlers(app, console)
    app.middleware("http")(_headers_and_log)
    return app


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _handlers(app: FastAPI, console: Console) -> None:
    @app.exception_handler(NotLoggedIn)
    def not_logged_in(request: Request, _exc: NotLoggedIn) -> Response:
        if _wants_json(request):
            return JSONResponse({"detail": "log in first (POST /api/login)"}, status_code=401)
        target = request.url.path if request.method == "GET" else "/studies"
        return RedirectResponse(f"/login?next={target}", status_code=303)

    @app.exception_handler(Forbidden)
    def forbidden(request: Request, exc: Forbidden) -> Response:
        log.warning("refused %s %s: %s", request.method, request.url.path, exc.reason)
        if _wants_json(request):
            return JSONResponse({"detail": exc.reason}, status_code=403)
        return render(console, request, "error.html", status_code=403, message=exc.reason)  # type: ignore[no-any-return]

    @app.exception_handler(ActionError)
    def action_error(request: Request, exc: ActionError) -> Response:
        if _wants_json(request):
            return JSONResponse({"detail": str(exc)}, status_code=exc.status)
        return render(console, request, "error.html", status_code=exc.status, message=str(exc))  # type: ignore[no-any-return]

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _wants_json(request) or request.url.path.startswith("/static/"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        return render(console, request, "error.html", status_code=exc.status_code,  # type: ignore[no-any-return]
                      message=str(exc.detail))

    @app.exception_handler(Exception)
    def unexpected(request: Request, exc: Exception) -> Response:
        # Answered by Starlette's outermost error middleware, past _headers_and_log: the
        # security headers are added here, and the details stay in the server's log.
        log.error("%s %s failed: %s", request.method, request.url.path, type(exc).__name__)
        return secure_headers(request, JSONResponse({"detail": "internal error"},
                                                    status_code=500))

    @app.exception_handler(RequestValidationError)
    def invalid(request: Request, exc: RequestValidationError) -> Response:
        # Field names and messages only, never the submitted values (a password field).
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                             for e in exc.errors())
        if _wants_json(request):
            return JSONResponse({"detail": problems}, status_code=422)
        return render(console, request, "error.html", status_code=422, message=problems)  # type: ignore[no-any-return]


def secure_headers(request: Request, response: Response) -> Response:
    """The security headers every answer carries (errors included)."""
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    if not request.url.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-store"
    return response


async def _headers_and_log(request: Request,
                           call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    start = time.perf_counter()
    response = secure_headers(request, await call_next(request))
    principal = getattr(request.state, "principal", None)
    # The path only: a query string may carry a search term (uvicorn's access log is off).
    log.info("%s %s %d %s %.0f ms", request.method, request.url.path, response.status_code,
             principal.username if principal else "-", (time.perf_counter() - start) * 1000)
    return response
