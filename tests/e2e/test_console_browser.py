"""The console in a real headless Chromium (Debian's /usr/bin/chromium, driven by
Playwright; no browser is ever downloaded): log in, open a drafted study and see its
contact sheet, key frames and draft, acknowledge the ED alert, test a routing rule.
Screenshots go to tests/artifacts/console/ (ignored by git) as test artefacts."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from console_helpers import PASSWORDS, RULES, Seeded, running_console, seed
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import Draft, make_engine, make_sessionmaker
from radraft.core.db.migrate import upgrade

CHROMIUM = "/usr/bin/chromium"
os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")


@pytest.fixture
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "install the Debian packages chromium and chromium-driver"
    with sync_playwright() as playwright:
        # --no-sandbox: the tests run as root in a container, where Chromium's sandbox
        # cannot start.
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def console_db(tmp_path: Path) -> tuple[str, sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'radraft.db'}"
    upgrade(url)
    return url, make_sessionmaker(make_engine(url))


def _log_in(page: Page, base: str, user: str) -> None:
    page.goto(f"{base}/studies")
    expect(page).to_have_url(f"{base}/login?next=/studies")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORDS[user])
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base}/studies")


def _loaded(page: Page, selector: str) -> int:
    """The natural width of an image once it has loaded (0: broken image)."""
    locator = page.locator(selector)
    expect(locator).to_be_visible()
    width: int = locator.evaluate("img => img.complete ? img.naturalWidth : 0")
    return width


def test_console_in_chromium(browser: Browser, console_db: tuple[str, sessionmaker[Session]],
                             tmp_path: Path, artifacts: Path) -> None:
    url, sessions = console_db
    seeded: Seeded = seed(sessions, tmp_path, url)
    shots = artifacts / "console"
    shots.mkdir(exist_ok=True)
    with running_console(seeded.settings, sessions) as client:
        base = str(client.base_url).rstrip("/")
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
                if r.status >= 400 else None)

        _log_in(page, base, "ed1")
        expect(page.locator("#studies")).to_contain_text("Quillfeather Aurelia")
        expect(page.locator("#studies")).to_contain_text("draft by ct-abdomen")
        page.screenshot(path=str(shots / "01-studies.png"), full_page=True)

        page.click(f"a[href='/studies/{seeded.drafted_uid}']")
        expect(page.locator("#patient")).to_contain_text("Quillfeather Aurelia")
        expect(page.locator(".report")).to_contain_text("hypodense lesion, segment VII")
        expect(page.locator(".report")).to_contain_text("AI-generated draft")
        expect(page.locator("#series")).to_contain_text("portal venous")
        assert _loaded(page, f"#sheet-{seeded.draft_id}") > 448
        assert _loaded(page, "#frame-1 img") == 448
        assert _loaded(page, "#frame-2 img") == 448
        expect(page.locator(".deliveries").first).to_contain_text("failed")
        page.screenshot(path=str(shots / "02-study.png"), full_page=True)

        page.click("nav a[href='/ed']")
        row = page.locator(f"#ed-{seeded.draft_id}")
        expect(row).to_contain_text("CRITICAL")
        expect(row).to_contain_text("suspected hepatic haemorrhage")
        page.screenshot(path=str(shots / "03-ed-board.png"), full_page=True)
        row.locator("button", has_text="Acknowledge").click()
        expect(page.locator("#msg")).to_contain_text("acknowledged")
        expect(page.locator(f"#ed-{seeded.draft_id}")).to_contain_text("ed1")
        page.screenshot(path=str(shots / "04-ed-acknowledged.png"), full_page=True)

        page.click("form.logout button")
        _log_in(page, base, "alice")
        page.click("nav a[href='/rules']")
        expect(page.locator("#validity")).to_have_text("valid")
        page.fill("#test-form input[name=study_uid]", seeded.drafted_uid)
        page.click("#test-form button[type=submit]")
        result = page.locator("#test-result")
        expect(result).to_contain_text("draft by rule ct-abdomen")
        expect(result).to_contain_text("profile ct-generic, priority urgent")
        # The editor still holds the file after a test.
        expect(page.locator("#edit-form textarea")).to_have_value(RULES)
        page.screenshot(path=str(shots / "05-rules-test.png"), full_page=True)

        page.click("nav a[href='/deliveries']")
        page.locator(f"#delivery-{seeded.failed_delivery} button",
                     has_text="Retry now").click()
        expect(page.locator("#msg")).to_contain_text(f"delivery {seeded.failed_delivery}")
        page.screenshot(path=str(shots / "06-deliveries.png"), full_page=True)
        context.close()
        assert errors == []  # no CSP violation, no broken resource
    with sessions() as session:
        draft = session.get(Draft, seeded.draft_id)
        assert draft is not None and draft.acknowledged_by == "ed1"
    for name in ("01-studies", "02-study", "03-ed-board", "04-ed-acknowledged",
                 "05-rules-test", "06-deliveries"):
        assert (shots / f"{name}.png").stat().st_size > 10_000
    print(f"screenshots: {shots}")
