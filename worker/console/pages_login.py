"""Login and logout. The login form is protected against login CSRF with a double-submit
token (a cookie and a hidden field that must agree)."""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from radraft.core import audit
from radraft.worker.console.auth import authenticate
from radraft.worker.console.deps import COOKIE, Console, ConsoleDep, DbDep, render

log = logging.getLogger(__name__)

LOGIN_COOKIE = "radraft_login"
router = APIRouter(include_in_schema=False)


def safe_next(target: str) -> str:
    """Only a local path (no open redirect to another site)."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/studies"


def secure_cookie(console: Console, request: Request) -> bool:
    """Secure when web.secure_cookies says so, or when the request came over HTTPS (seen
    directly, or in X-Forwarded-Proto from one of web.trusted_proxies)."""
    return console.settings.web.secure_cookies or request.url.scheme == "https"


def client_address(request: Request) -> str:
    """The caller's address (the forwarded one when the proxy is trusted: uvicorn applies
    X-Forwarded-For only from web.trusted_proxies)."""
    return request.client.host if request.client is not None else "unknown"


def set_session_cookie(response: Response, request: Request, value: str,
                       console: Console) -> None:
    response.set_cookie(COOKIE, value, httponly=True, samesite="strict", path="/",
                        secure=secure_cookie(console, request))


def _form(console: Console, request: Request, next_path: str, error: str = "",
          status_code: int = 200) -> Any:
    token = secrets.token_urlsafe(24)
    response = render(console, request, "login.html", status_code=status_code,
                      login_token=token, next_path=safe_next(next_path), error=error)
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", path="/login",
                        secure=secure_cookie(console, request))
    return response


@router.get("/login")
def login_form(request: Request, console: ConsoleDep, next: str = "/studies") -> Any:
    return _form(console, request, next)


@router.post("/login")
def login(request: Request, console: ConsoleDep, db: DbDep,
          username: Annotated[str, Form()], password: Annotated[str, Form()],
          login_token: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/studies",
          ) -> Any:
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie, login_token):
        return _form(console, request, next, "the login form expired: try again", 400)
    try:
        value = login_user(console, db, username, password, client_address(request))
    except LoginRefused as exc:
        return _form(console, request, next, str(exc), exc.status)
    response = RedirectResponse(safe_next(next), status_code=303)
    set_session_cookie(response, request, value, console)
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


class LoginRefused(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def login_user(console: Console, db: Session, username: str, password: str,
               address: str) -> str:
    """Shared by the page and the API: throttle, check, open the session, audit; returns
    the session cookie's value."""
    if not console.throttle.attempt(username, address):
        audit.record(db, "user.login_refused", actor=username[:64], reason="throttled",
                     address=address[:64])
        db.commit()
        raise LoginRefused("too many failed logins: wait a few minutes", 429)
    user = authenticate(db, username, password)
    if user is None:
        audit.record(db, "user.login_failed", actor=username[:64], address=address[:64])
        db.commit()
        log.info("console login failed (the audit log names the user)")
        raise LoginRefused("wrong user name or password", 401)
    console.throttle.succeeded(username, address)
    value = console.store.open(db, user)
    audit.record(db, "user.login", actor=user.username, role=user.role)
    db.commit()
    return value


@router.post("/logout")
def logout(request: Request, console: ConsoleDep, db: DbDep) -> RedirectResponse:
    # No CSRF check needed to end a session: the worst a forged logout does is log out.
    console.store.close(db, request.cookies.get(COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
