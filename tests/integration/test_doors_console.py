"""The console's door against a real `radraft serve` over HTTP (issue 25, item 7): the login
throttle (parallel guesses, password spraying, no admin lock-out), hostile query values,
UIDs with '/', the Secure cookie behind a proxy."""

from __future__ import annotations

import threading
from pathlib import Path
from urllib.parse import quote

import httpx
from doors_helpers import ADMIN, ADMIN_PASSWORD, running_serve
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import Study, db_now

SECURITY_HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options",
                    "Referrer-Policy", "Cache-Control")


def _login(base: str, user: str, password: str, address: str | None = None) -> int:
    headers = {"X-Forwarded-For": address} if address else {}
    return httpx.post(f"{base}/api/login", json={"username": user, "password": password},
                      headers=headers, timeout=120).status_code


def test_login_throttle_holds_against_parallel_guesses_and_spraying(
    tmp_path: Path, db_url: str,
) -> None:
    with running_serve(tmp_path, db_url) as served:
        base = served.base
        # 1. Thirty guesses in parallel from one address: at most five are even checked.
        codes: list[int] = []
        lock = threading.Lock()

        def guess(n: int) -> None:
            code = _login(base, ADMIN, f"wrong-{n}", "10.0.0.66")
            with lock:
                codes.append(code)

        threads = [threading.Thread(target=guess, args=(n,)) for n in range(30)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(set(codes)) == [401, 429] and codes.count(401) <= 5, codes
        # 2. The admin at her own desk is not locked out by that guesser.
        assert _login(base, ADMIN, ADMIN_PASSWORD) == 200
        # 3. One address spraying one password over many user names is stopped.
        sprayed = [_login(base, f"user{n}", "Winter2026!", "10.0.0.77") for n in range(30)]
        assert sprayed[:20] == [401] * 20 and set(sprayed[20:]) == {429}, sprayed
        # ... but not the admin elsewhere, who still logs in.
        assert _login(base, ADMIN, ADMIN_PASSWORD, "10.0.0.99") == 200


def test_hostile_query_values_and_slashed_uids(
    tmp_path: Path, db_url: str, sessions: sessionmaker[Session],
) -> None:
    slashed = "1.2.3/4/../5"
    with sessions() as session:  # a row stored before the node refused such UIDs
        now = db_now(session)
        session.add(Study(study_uid=slashed, first_received_at=now, last_received_at=now,
                          study_description="SLASHED UID", modalities="CT"))
        session.commit()
    with running_serve(tmp_path, db_url) as served:
        client, _csrf = served.admin()
        for hours in ("nan", "inf", "-inf", "1e309", "-1", "0"):
            for path in ("/api/studies", "/studies"):
                answer = client.get(path, params={"hours": hours})
                assert answer.status_code == 422, (path, hours, answer.status_code)
                for header in SECURITY_HEADERS:
                    assert header in answer.headers, (path, hours, header)
        assert client.get("/api/studies", params={"hours": "24"}).status_code == 200
        # The study page and its API row open; the list links to it percent-encoded.
        listing = client.get("/studies").text
        link = f'/studies/{quote(slashed, safe="")}'
        assert f'href="{link}"' in listing
        page = client.get(link)
        assert page.status_code == 200 and "SLASHED UID" in page.text
        detail = client.get(f"/api/studies/{quote(slashed, safe='')}").json()
        assert detail["study"]["study_uid"] == slashed
        missing = client.get("/api/studies/9.9.9")
        assert missing.status_code == 404 and "Content-Security-Policy" in missing.headers
        assert served.alive()


def test_secure_cookie_behind_a_proxy(tmp_path: Path, db_url: str) -> None:
    body = {"username": ADMIN, "password": ADMIN_PASSWORD}
    with running_serve(tmp_path / "a", db_url, web={"trusted_proxies": ["127.0.0.1"]}) as a:
        plain = httpx.post(f"{a.base}/api/login", json=body)
        assert plain.status_code == 200 and "secure" not in plain.headers["set-cookie"].lower()
        proxied = httpx.post(f"{a.base}/api/login", json=body,
                             headers={"X-Forwarded-Proto": "https"})
        assert "secure" in proxied.headers["set-cookie"].lower()
    # An Ingress elsewhere (not trusted): the forwarded scheme is not believed, but
    # web.secure_cookies sets Secure regardless.
    with running_serve(tmp_path / "b", db_url,
                       web={"trusted_proxies": ["10.9.9.9"], "secure_cookies": True}) as b:
        answer = httpx.post(f"{b.base}/api/login", json=body)
        assert "secure" in answer.headers["set-cookie"].lower()
    with running_serve(tmp_path / "c", db_url, web={"trusted_proxies": ["10.9.9.9"]}) as c:
        forged = httpx.post(f"{c.base}/api/login", json=body,
                            headers={"X-Forwarded-Proto": "https"})
        assert "secure" not in forged.headers["set-cookie"].lower()
