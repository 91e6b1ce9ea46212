"""End to end in a real browser (Debian's chromium via playwright): log in, see a flagged post
arrive live, claim it, answer it, see it leave the queue; hostile text never runs as script; an
admin manages accounts on the users page."""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import Engine

from monitor.core.clock import SystemClock
from monitor.core.storage.db import session_factory, transaction
from monitor.web.app import create_app
from tests.queue_seed import add_flagged, add_staff, web_config

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(os.environ.get("FLAREWATCH_SCREENSHOTS", "/tmp"))
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium "
                                                     "(apt-get install chromium; .ci/run installs it)"),
]
XSS_TEXT = 'acme <script>window.__xss=1</script><img src=x onerror="window.__xss=2"> is down again'
XSS_AUTHOR = '<img src=y onerror="window.__xss=3">mallory'


@pytest.fixture
def served(sqlite_engine: Engine) -> Iterator[tuple[str, object]]:
    """The app on an ephemeral port, served by uvicorn in a thread, like the daemon does."""
    sessions = session_factory(sqlite_engine)
    with transaction(sessions) as session:
        add_staff(session)
    app = create_app(web_config(poll_seconds=1), sessions, SystemClock())
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off",
                                           timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", sessions
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_log_in_claim_answer_and_see_it_leave_the_queue(served: tuple[str, object]) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, sessions = served
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            dialogs: list[str] = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(f"{base}/queue")
            expect(page).to_have_url(f"{base}/login?next=/queue")
            page.fill("input[name=username]", "alice")
            page.fill("input[name=password]", "alice-password")
            page.click("button[type=submit]")
            expect(page).to_have_url(f"{base}/queue")
            expect(page.locator(".empty")).to_be_visible()
            page.evaluate("window.__stayed = true")  # survives only if the page is never reloaded

            with transaction(sessions) as session:  # detection flags a post while the page is open
                quiet = add_flagged(session, urgency=1.0, text="acme delivery late", author="sam").id
                hostile = add_flagged(session, urgency=8.0, text=XSS_TEXT, author=XSS_AUTHOR,
                                      url="javascript:window.__xss=4").id
            row = page.locator(f'[data-post-id="{hostile}"]')
            expect(row).to_be_visible(timeout=10_000)
            assert page.evaluate("window.__stayed") is True, "the queue reloaded instead of updating live"
            expect(row.locator(".text")).to_contain_text("<script>window.__xss=1</script>")
            expect(row.locator(".author")).to_have_text(XSS_AUTHOR)
            page.screenshot(path=str(SHOTS / "flarewatch-queue-1280.png"), full_page=True)

            row.get_by_role("button", name="Claim").click()
            expect(page.locator(".flash")).to_contain_text(f"Post {hostile} is yours")
            row = page.locator(f'[data-post-id="{hostile}"]')
            expect(row.locator(".held")).to_contain_text("Yours until")
            row.get_by_role("link", name="Answer").click()
            expect(page).to_have_url(f"{base}/posts/{hostile}#answer")
            expect(page.locator(".fulltext")).to_have_text(XSS_TEXT)
            page.fill("input[name=url]", "https://social.example/acme/reply/1")
            page.fill("textarea[name=note]", "apologised, DM sent")
            page.get_by_role("button", name="Mark answered").click()
            expect(page).to_have_url(f"{base}/queue")
            expect(page.locator(".flash")).to_contain_text(f"Post {hostile} answered")
            expect(page.locator(f'[data-post-id="{hostile}"]')).to_have_count(0)
            expect(page.locator(f'[data-post-id="{quiet}"]')).to_be_visible()

            page.goto(f"{base}/posts/{hostile}")
            expect(page.locator(".timeline")).to_contain_text("alice answered this post")
            assert page.evaluate("typeof window.__xss") == "undefined" and not dialogs, "hostile text ran as script"

            page.set_viewport_size({"width": 390, "height": 844})
            page.goto(f"{base}/queue")
            expect(page.locator(f'[data-post-id="{quiet}"]')).to_be_visible()
            assert page.evaluate("document.documentElement.scrollWidth") <= 390, "the queue scrolls sideways on a phone"
            page.screenshot(path=str(SHOTS / "flarewatch-queue-phone.png"), full_page=True)
            page.goto(f"{base}/posts/{quiet}")
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            page.screenshot(path=str(SHOTS / "flarewatch-post-phone.png"), full_page=True)
        finally:
            browser.close()


def test_an_admin_adds_a_user_and_changes_a_role_in_the_users_page(served: tuple[str, object]) -> None:
    from playwright.sync_api import expect, sync_playwright

    from monitor.core import accounts

    base, sessions = served
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            blocked: list[str] = []  # a CSP violation (an inline script or style) shows up here
            page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
            page.goto(f"{base}/login?next=/admin/users")
            page.fill("input[name=username]", "ada")
            page.fill("input[name=password]", "ada-password")
            page.click("button[type=submit]")
            expect(page).to_have_url(f"{base}/admin/users")
            expect(page.get_by_role("link", name="Users")).to_be_visible()

            add = page.locator("form[action='/admin/users']")
            add.locator("input[name=name]").fill("<b>nina</b>")
            add.locator("select[name=role]").select_option("manager")
            add.locator("input[name=password]").fill("nina-password")
            add.get_by_role("button", name="Add").click()
            expect(page.locator(".flash")).to_contain_text("Added <b>nina</b> (manager).")

            row = page.locator("tr", has=page.locator("td.author", has_text="bob"))
            row.locator("select[name=role]").select_option("manager")
            row.locator("input[name=slack_user_id]").fill("U0BOB0001")
            row.get_by_role("button", name="Save").click()
            expect(page.locator(".flash")).to_contain_text("Saved bob.")
            page.screenshot(path=str(SHOTS / "flarewatch-admin-users.png"), full_page=True)
            assert not blocked, blocked
        finally:
            browser.close()
    with sessions() as session:  # type: ignore[operator]
        bob, nina = accounts.get_user(session, "bob"), accounts.get_user(session, "<b>nina</b>")
        assert bob is not None and (bob.role, bob.slack_user_id) == ("manager", "U0BOB0001")
        assert nina is not None and nina.role == "manager"
        assert accounts.authenticate(session, "<b>nina</b>", "nina-password") is not None
