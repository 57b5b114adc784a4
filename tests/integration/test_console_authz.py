"""Who may do what in the console: no page without login (and no PHI before it), a viewer
changes nothing, each role only its own actions, CSRF on every form, sessions that end, no
patient name in any log line."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from console_helpers import NAME_PARTS, PASSWORDS, RULES, Seeded, login, running_console, seed
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import AuditEvent, Delivery, Draft, WebSession, db_now
from radraft.worker.console.deps import COOKIE, CSRF_HEADER


@pytest.fixture
def seeded(sessions: sessionmaker[Session], tmp_path: Path, db_url: str) -> Seeded:
    return seed(sessions, tmp_path, db_url)


def _pages(s: Seeded) -> list[str]:
    return ["/", "/studies", f"/studies/{s.drafted_uid}", "/queues", "/deliveries", "/rules",
            "/ed", f"/drafts/{s.draft_id}/sheet.png", f"/drafts/{s.draft_id}/frames/1.png"]


def _api(s: Seeded) -> list[str]:
    return ["/api/me", "/api/studies", f"/api/studies/{s.drafted_uid}", "/api/queues",
            "/api/deliveries", "/api/rules", "/api/ed", "/api/openapi.json"]


def _no_phi(text: str) -> None:
    for part in NAME_PARTS:
        assert part not in text, f"patient name part {part!r} leaked"


def test_nothing_but_health_without_login_and_no_phi(
    seeded: Seeded, sessions: sessionmaker[Session],
) -> None:
    with running_console(seeded.settings, sessions) as client:
        for path in _pages(seeded):
            answer = client.get(path, follow_redirects=False)
            assert answer.status_code == 303, path
            assert answer.headers["location"].startswith("/login?next=")
            _no_phi(answer.text)
        for path in _api(seeded):
            answer = client.get(path)
            assert answer.status_code == 401, path
            _no_phi(answer.text)
        for path in ("/deliveries/1/retry", "/deliveries/1/cancel", "/ed/1/ack", "/rules/save",
                     "/rules/reload", "/rules/test"):
            answer = client.post(path, data={"csrf_token": "x"}, follow_redirects=False)
            assert answer.status_code in (303, 422), path  # 422: form incomplete, no data shown
            _no_phi(answer.text)
        login_page = client.get("/login")
        assert login_page.status_code == 200 and "Log in" in login_page.text
        _no_phi(login_page.text)
        for path in ("/healthz", "/readyz", "/metrics"):
            answer = client.get(path)
            assert answer.status_code == 200, path
            _no_phi(answer.text)
            assert "PID-CONSOLE-1" not in answer.text and "ACC-CON-1" not in answer.text
        # The same pages behind login do show the patient (so the checks above can fail).
        login(client, "vic")
        assert "Quillfeather Aurelia" in client.get(f"/studies/{seeded.drafted_uid}").text


def test_viewer_cannot_retry_cancel_or_change_rules(
    seeded: Seeded, sessions: sessionmaker[Session],
) -> None:
    path = seeded.settings.rules_file
    assert path is not None
    with running_console(seeded.settings, sessions) as client:
        csrf = login(client, "vic")
        headers = {CSRF_HEADER: csrf}
        for call in (
            lambda: client.post(f"/api/deliveries/{seeded.failed_delivery}/retry",
                                headers=headers),
            lambda: client.post(f"/api/deliveries/{seeded.failed_delivery}/cancel",
                                headers=headers),
            lambda: client.put("/api/rules", json={"text": "rules: []\n"}, headers=headers),
            lambda: client.post("/api/rules/reload", headers=headers),
            lambda: client.post("/api/rules/test", json={"study_uid": seeded.drafted_uid},
                                headers=headers),
            lambda: client.post(f"/api/ed/{seeded.draft_id}/ack", headers=headers),
        ):
            answer = call()
            assert answer.status_code == 403 and "viewer" in answer.json()["detail"]
        # The HTML forms, with the right CSRF token: still refused.
        for form_path, data in (
            (f"/deliveries/{seeded.failed_delivery}/retry", {}),
            (f"/deliveries/{seeded.failed_delivery}/cancel", {}),
            ("/rules/save", {"text": "rules: []\n"}),
            ("/rules/reload", {}),
            ("/rules/test", {"study_uid": seeded.drafted_uid}),
            (f"/ed/{seeded.draft_id}/ack", {}),
        ):
            answer = client.post(form_path, data={"csrf_token": csrf, **data},
                                 follow_redirects=False)
            assert answer.status_code == 403, form_path
        # Reading rules is fine for a viewer; testing runs a user's patterns: admins only.
        page = client.get("/rules").text
        assert "Only admins edit" in page and 'action="/rules/save"' not in page
        assert 'action="/rules/test"' not in page and "ct-abdomen" in page
        assert 'action="/deliveries/' not in client.get("/deliveries").text
    assert path.read_text() == RULES
    with sessions() as session:
        row = session.get(Delivery, seeded.failed_delivery)
        draft = session.get(Draft, seeded.draft_id)
        assert row is not None and row.state == "failed"
        assert draft is not None and draft.acknowledged_at is None
        assert not session.scalars(select(AuditEvent).where(AuditEvent.kind.in_(
            ("delivery.retried", "delivery.cancelled", "rules.changed")))).all()


def test_each_role_only_its_own_actions(seeded: Seeded, sessions: sessionmaker[Session]) -> None:
    with running_console(seeded.settings, sessions) as client:
        csrf = login(client, "ed1")
        assert client.post(f"/api/deliveries/{seeded.failed_delivery}/retry",
                           headers={CSRF_HEADER: csrf}).status_code == 403
        assert client.put("/api/rules", json={"text": RULES},
                          headers={CSRF_HEADER: csrf}).status_code == 403
    with running_console(seeded.settings, sessions) as client:
        csrf = login(client, "alice")
        # Acknowledging says a clinician saw the alert: not an administrator's act.
        assert client.post(f"/api/ed/{seeded.draft_id}/ack",
                           headers={CSRF_HEADER: csrf}).status_code == 403
        assert "Acknowledge</button>" not in client.get("/ed").text


def test_csrf_on_every_form_and_cookie_flags(
    seeded: Seeded, sessions: sessionmaker[Session],
) -> None:
    with running_console(seeded.settings, sessions) as client:
        page = client.get("/login")
        token = re.search(r'name="login_token" value="([^"]+)"', page.text)
        assert token is not None
        # A login form posted without the login cookie (from another site) is refused.
        with httpx.Client(base_url=str(client.base_url)) as stranger:
            refused = stranger.post("/login", data={
                "username": "alice", "password": PASSWORDS["alice"],
                "login_token": token.group(1)}, follow_redirects=False)
            assert refused.status_code == 400 and COOKIE not in refused.cookies
        answer = client.post("/login", data={"username": "alice", "password": PASSWORDS["alice"],
                                             "login_token": token.group(1), "next": "//evil"},
                             follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/studies"
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        csrf = client.get("/api/me").json()["csrf_token"]
        pages = [client.get("/deliveries").text, client.get("/rules").text]
        assert all(f'name="csrf_token" value="{csrf}"' in p for p in pages)
        for data in ({}, {"csrf_token": "forged"}):
            answer = client.post(f"/deliveries/{seeded.failed_delivery}/retry", data=data,
                                 follow_redirects=False)
            assert answer.status_code == 403 and "CSRF" in answer.text
        # Another user's token does not work in this session.
        with httpx.Client(base_url=str(client.base_url)) as other:
            other_csrf = login(other, "vic")
        answer = client.post(f"/deliveries/{seeded.failed_delivery}/retry",
                             data={"csrf_token": other_csrf}, follow_redirects=False)
        assert answer.status_code == 403
        answer = client.post(f"/deliveries/{seeded.failed_delivery}/retry",
                             data={"csrf_token": csrf}, follow_redirects=False)
        assert answer.status_code == 303
        headers = client.get("/studies").headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["cache-control"] == "no-store"


def test_sessions_end_on_logout_expiry_and_failed_logins_are_throttled(
    seeded: Seeded, sessions: sessionmaker[Session],
) -> None:
    with running_console(seeded.settings, sessions) as client:
        login(client, "vic")
        cookie = client.cookies[COOKIE]
        assert client.post("/logout", follow_redirects=False).status_code == 303
        client.cookies.set(COOKIE, cookie)  # the old cookie, replayed
        assert client.get("/api/me").status_code == 401

        login(client, "vic")
        with sessions() as session:
            session.execute(update(WebSession).values(
                last_seen_at=db_now(session) - timedelta(hours=2)))
            session.commit()
        assert client.get("/api/me").status_code == 401  # idle too long
        client.cookies.set(COOKIE, "forged.value")
        assert client.get("/api/me").status_code == 401

        for _ in range(5):
            wrong = client.post("/api/login", json={"username": "alice", "password": "nope"})
            assert wrong.status_code == 401
        blocked = client.post("/api/login", json={"username": "alice",
                                                  "password": PASSWORDS["alice"]})
        assert blocked.status_code == 429
        assert client.post("/api/login", json={"username": "ed1", "password": PASSWORDS["ed1"]
                                               }).status_code == 200
    with sessions() as session:
        failures = session.scalars(select(AuditEvent).where(
            AuditEvent.kind == "user.login_failed")).all()
        assert len(failures) == 5 and {f.actor for f in failures} == {"alice"}
        assert not any("nope" in str(f.details) for f in failures)


def test_no_patient_name_in_any_log_line(
    seeded: Seeded, sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with running_console(seeded.settings, sessions) as client:
        csrf = login(client, "alice")
        for path in _pages(seeded) + _api(seeded) + ["/metrics", "/readyz",
                                                     "/studies?q=Quillfeather"]:
            assert client.get(path, follow_redirects=True).status_code == 200, path
        client.post(f"/api/deliveries/{seeded.failed_delivery}/retry",
                    headers={CSRF_HEADER: csrf})
        client.post("/api/rules/test", json={"study_uid": seeded.drafted_uid},
                    headers={CSRF_HEADER: csrf})
        client.post("/api/login", json={"username": "Quillfeather", "password": "x"})
    # Everything radraft, uvicorn and the libraries log in the server; the test's own
    # HTTP client (httpx, httpcore) logs the URLs it was asked for, so it is left out.
    text = "\n".join(r.getMessage() for r in caplog.records
                     if not r.name.startswith(("httpx", "httpcore")))
    assert "/studies/" in text and seeded.drafted_uid in text  # requests are logged ...
    for part in NAME_PARTS:
        assert part not in text  # ... but never a patient name (not even a typed one)
