"""/healthz (the process answers), /readyz (database, broker, model endpoint) and
/metrics. No login on these three: probes and Prometheus cannot log in, and none of them
shows anything about a patient (check names and counts only)."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from kombu.connection import Connection
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.settings import Settings
from radraft.worker.console.deps import Console, ReadyCheck

log = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 3.0

router = APIRouter(include_in_schema=False)


def database_check(sessions: sessionmaker[Session]) -> ReadyCheck:
    def check() -> str:
        with sessions() as session:
            session.execute(select(1))
        return "ok"
    return check


def broker_check(settings: Settings) -> ReadyCheck:
    def check() -> str:
        conn = Connection(settings.broker_url,  # type: ignore[no-untyped-call]
                          connect_timeout=CHECK_TIMEOUT_S)
        with conn:
            conn.ensure_connection(  # type: ignore[no-untyped-call]
                max_retries=1, interval_start=0, interval_step=0, timeout=CHECK_TIMEOUT_S)
        return "embedded" if settings.embedded_broker else "ok"
    return check


def model_check(settings: Settings) -> ReadyCheck:
    """openai: at least one `model.base_urls` answers GET /models; transformers: the model
    directory holds a config.json (loading it here would take the console's memory)."""

    def check() -> str:
        if settings.model.backend != "openai":
            path = Path(settings.model_path)
            if not (path / "config.json").is_file():
                raise RuntimeError(f"no model at {path}")
            return "in-process model present"
        key = settings.model.api_key.get_secret_value()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        problems = []
        for url in settings.model.base_urls:
            try:
                answer = httpx.get(url.rstrip("/") + "/models", headers=headers,
                                   timeout=CHECK_TIMEOUT_S)
                if answer.status_code == 200:
                    return f"{url} answers"
                problems.append(f"{url}: HTTP {answer.status_code}")
            except httpx.HTTPError as exc:
                problems.append(f"{url}: {type(exc).__name__}")
        raise RuntimeError("; ".join(problems) or "no model.base_urls configured")
    return check


def default_checks(settings: Settings, sessions: sessionmaker[Session]) -> dict[str, ReadyCheck]:
    return {"database": database_check(sessions), "broker": broker_check(settings),
            "model": model_check(settings)}


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """503 when a required check (database, broker) fails; a model endpoint that is down
    only makes it "degraded": the node must keep receiving studies while a GPU server
    restarts (drafts wait in the queue)."""
    console: Console = request.app.state.console
    checks: dict[str, dict[str, object]] = {}
    failed_required = False
    for name, check in console.ready_checks.items():
        try:
            checks[name] = {"ok": True, "detail": check()}
        except Exception as exc:  # noqa: BLE001 (any failure is "not ready", with its reason)
            # Only the error's type here (no login on this endpoint: no host names or
            # URLs for anyone who asks); the log has the message.
            checks[name] = {"ok": False, "detail": type(exc).__name__}
            failed_required |= name in console.required_checks
            log.warning("readiness: %s failed: %s", name, exc)
    degraded = any(not c["ok"] for c in checks.values())
    status = "unavailable" if failed_required else "degraded" if degraded else "ready"
    return JSONResponse({"status": status, "checks": checks},
                        status_code=503 if failed_required else 200)


@router.get("/metrics")
def metrics(request: Request) -> Response:
    registry = request.app.state.metrics
    return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
