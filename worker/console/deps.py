"""What every console route receives: the Console (settings, sessions, rules ...), a
database session, the logged-in principal, permission and CSRF checks."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Form, Header, Request
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.settings import Settings
from radraft.dicom_node.rules import RulesWatcher
from radraft.worker.console.auth import LoginThrottle, Principal, SessionStore
from radraft.worker.enqueue import Enqueue

COOKIE = "radraft_session"
CSRF_HEADER = "X-CSRF-Token"

ReadyCheck = Callable[[], str]  # returns a short "ok" detail, raises when not ready


@dataclass
class Console:
    """The console's collaborators, built once by `create_app` (no global state)."""

    settings: Settings
    sessions: sessionmaker[Session]
    rules: RulesWatcher
    enqueue: Enqueue
    templates: Jinja2Templates
    store: SessionStore
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    ready_checks: dict[str, ReadyCheck] = field(default_factory=dict)
    # Checks whose failure makes /readyz answer 503 (the model only degrades it).
    required_checks: frozenset[str] = frozenset({"database", "broker"})


class NotLoggedIn(Exception):
    """No valid session: pages redirect to /login, the API answers 401."""


class Forbidden(Exception):
    """Logged in, but the role lacks the permission (or the CSRF token is wrong)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def get_console(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


ConsoleDep = Annotated[Console, Depends(get_console)]


def get_db(console: ConsoleDep) -> Iterator[Session]:
    with console.sessions() as session:
        yield session


DbDep = Annotated[Session, Depends(get_db)]


def get_principal(request: Request, console: ConsoleDep, db: DbDep) -> Principal:
    principal = console.store.resolve(db, request.cookies.get(COOKIE))
    if principal is None:
        raise NotLoggedIn()
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def _same(a: str | None, b: str) -> bool:
    return bool(a) and hmac.compare_digest(str(a), b)


def form_action(permission: str | None = None) -> Callable[..., Principal]:
    """A POSTed HTML form: the role must have `permission`, the form must carry the
    session's CSRF token."""

    def check(principal: PrincipalDep,
              csrf_token: Annotated[str, Form()] = "") -> Principal:
        if permission is not None and not principal.can(permission):
            raise Forbidden(f"the {principal.role} role may not do this ({permission})")
        if not _same(csrf_token, principal.csrf_token):
            raise Forbidden("missing or wrong CSRF token: reload the page and try again")
        return principal

    return check


def api_action(permission: str | None = None) -> Callable[..., Principal]:
    """A changing API call: the permission, and the CSRF token in the X-CSRF-Token header
    (GET /api/me gives it)."""

    def check(principal: PrincipalDep,
              x_csrf_token: Annotated[str | None, Header()] = None) -> Principal:
        if permission is not None and not principal.can(permission):
            raise Forbidden(f"the {principal.role} role may not do this ({permission})")
        if not _same(x_csrf_token, principal.csrf_token):
            raise Forbidden(f"missing or wrong {CSRF_HEADER} header")
        return principal

    return check


def render(console: Console, request: Request, name: str, status_code: int = 200,
           **context: Any) -> Any:
    """A template response with the principal and the site settings in its context."""
    principal = getattr(request.state, "principal", None)
    return console.templates.TemplateResponse(
        request, name, {"me": principal, "site": console.settings.site.name, **context},
        status_code=status_code,
    )
