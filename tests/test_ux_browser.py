"""What agents and managers see, in a real browser (Debian's chromium) at 1400 and 800 px: queue cards
with age, engagement and the original's link; pages beyond 100; live updates with "new" marks and
the keyboard; the incident page updating itself; a chart that ends now with labels that never
collide; the weekly page's trend with every column visible."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import uvicorn
from sqlalchemy import Engine

from alerts.routing import Alerts
from alerts.settings import AlertSettings
from monitor.core.clock import SimulatedClock
from monitor.core.incidents import acknowledge
from monitor.core.storage.db import session_factory, transaction
from monitor.web.app import create_app
from tests.queue_seed import T0, add_flagged, add_incident, add_staff, web_config
from tests.reports_seed import crafted_incident
from tests.test_web_browser import CHROMIUM, SHOTS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]
WIDTHS = (1400, 800)


@pytest.fixture
def served(sqlite_engine: Engine) -> Iterator[tuple[str, object, SimulatedClock]]:
    sessions = session_factory(sqlite_engine)
    with transaction(sessions) as session:
        add_staff(session)
    clock = SimulatedClock(T0 + timedelta(minutes=7))
    app = create_app(web_config(poll_seconds=1), sessions, clock)
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
        yield f"http://127.0.0.1:{port}", sessions, clock
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _browser(pw):  # noqa: ANN001, ANN202
    return pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])


def _login(page, base: str, user: str, target: str) -> None:  # noqa: ANN001
    page.goto(f"{base}/login?next={target}")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", f"{user}-password")
    page.click("button[type=submit]")


def test_queue_cards_paging_live_updates_and_keys_at_both_widths(served) -> None:  # noqa: ANN001
    from playwright.sync_api import expect, sync_playwright

    base, sessions, _ = served
    with transaction(sessions) as session:
        incident = add_incident(session, severity=2)
        top = add_flagged(session, urgency=500.0, incident=incident, text="acme router dead after the update",
                          author="loud", url="https://social.example/p/top").id
        for i in range(104):
            add_flagged(session, urgency=100.0 - i * 0.5, text=f"acme parcel {i} late", author=f"u{i}")
    with sync_playwright() as pw:
        browser = _browser(pw)
        try:
            for width in WIDTHS:
                page = browser.new_page(viewport={"width": width, "height": 900})
                _login(page, base, "alice", "/queue")
                expect(page.locator(".count")).to_contain_text("105 posts waiting · showing 1–100")
                card = page.locator(f'[data-post-id="{top}"]')
                expect(card.locator(".urgency")).to_have_text("urgency 500.0")
                expect(card.locator(".sentiment")).to_have_text("negative -0.80")
                expect(card.locator(".age")).to_have_text("posted 7 min ago")
                expect(card.locator(".engagement")).to_have_text("1 like · 2 reposts · 3 replies")
                expect(card.locator("a.original")).to_have_attribute("href", "https://social.example/p/top")
                assert page.evaluate("document.documentElement.scrollWidth") <= width
                page.screenshot(path=str(SHOTS / f"flarewatch-queue-cards-{width}.png"))

                page.get_by_role("link", name="Next ›").click()
                expect(page).to_have_url(f"{base}/queue?page=2")
                expect(page.locator(".count")).to_contain_text("showing 101–105")
                expect(page.locator("[data-post-id]")).to_have_count(5)
                page.get_by_role("link", name="‹ Previous").click()
                expect(page.locator("[data-post-id]")).to_have_count(100)

                page.evaluate("window.__stayed = true")
                with transaction(sessions) as session:  # detection flags a post while the page is open
                    fresh = add_flagged(session, urgency=900.0, text=f"acme new complaint {width}", author="new").id
                row = page.locator(f'[data-post-id="{fresh}"]')
                expect(row).to_be_visible(timeout=10_000)
                expect(row).to_have_class("item open new")
                expect(row.locator(".new-mark")).to_be_visible()
                expect(page.locator(f'[data-post-id="{top}"]')).not_to_have_class("item open new")
                assert page.evaluate("window.__stayed") is True, "the queue reloaded instead of updating live"
                page.screenshot(path=str(SHOTS / f"flarewatch-queue-live-{width}.png"))

                page.locator("body").click(position={"x": 5, "y": 5})
                page.keyboard.press("j")  # selects the first card: the new one
                expect(row).to_have_attribute("aria-current", "true")
                page.keyboard.press("c")
                expect(page.locator(".flash")).to_contain_text(f"Post {fresh} is yours")
                expect(page.locator(f'[data-post-id="{fresh}"]')).to_have_attribute("aria-current", "true")
                page.keyboard.press("r")
                expect(page.locator(".flash")).to_contain_text(f"Post {fresh} is back in the queue")
                with transaction(sessions) as session:  # out of the way for the next width
                    from monitor.core import queue

                    queue.dismiss(session, fresh, "alice", "test", T0)
                page.close()
        finally:
            browser.close()


def test_incident_page_updates_itself_and_its_chart_ends_now_without_colliding_labels(served) -> None:  # noqa: ANN001
    from playwright.sync_api import expect, sync_playwright

    base, sessions, clock = served
    with transaction(sessions) as session:
        incident = add_incident(session, severity=2, title="acme: negative posts are surging")
        incident.started_at, incident.opened_at = T0, T0 + timedelta(minutes=1)
        incident_id = incident.id
        for i in range(6):
            add_flagged(session, urgency=10.0 - i, incident=incident, text=f"acme router dead after update {i}",
                        author=f"a{i}")
    with sync_playwright() as pw:
        browser = _browser(pw)
        try:
            for width in WIDTHS:
                page = browser.new_page(viewport={"width": width, "height": 900})
                blocked: list[str] = []
                page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)  # noqa: B023
                _login(page, base, "mona", f"/incidents/{incident_id}")
                expect(page.locator("h1")).to_contain_text("negative posts are surging")
                page.evaluate("window.__stayed = true")
                if width == WIDTHS[0]:
                    with transaction(sessions) as session:  # someone acknowledges in Slack meanwhile
                        acknowledge(session, incident_id, "slack-person", clock.now(), alerting=Alerts(AlertSettings()))
                event = page.locator(".timeline li", has_text="Acknowledged by slack-person")
                expect(event).to_be_visible(timeout=10_000)
                if width == WIDTHS[0]:
                    expect(event).to_have_class("new")
                expect(page.locator(".facts")).to_contain_text("by slack-person")
                assert page.evaluate("window.__stayed") is True, "the incident page reloaded instead of updating"

                chart = page.locator("svg.incident-chart")
                # No marker label overlaps another (measured by the browser, not estimated).
                boxes = chart.locator("g.marker text").evaluate_all(
                    "els => els.map(e => { const b = e.getBBox(); return [b.x, b.y, b.x + b.width, b.y + b.height]; })")
                for i, a in enumerate(boxes):
                    for b in boxes[i + 1:]:
                        assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)
                # The series stop at the right edge of the plot, which is now: no future drawn as zero.
                plot_right = chart.evaluate("svg => Math.max(...[...svg.querySelectorAll('rect[fill=none]')]"
                                            ".map(r => r.x.baseVal.value + r.width.baseVal.value))")
                last_x = chart.locator("polyline[data-series=negative]").evaluate(
                    "p => Math.max(...p.getAttribute('points').trim().split(' ').map(xy => parseFloat(xy)))")
                assert last_x <= plot_right
                assert page.evaluate("document.documentElement.scrollWidth") <= width
                page.screenshot(path=str(SHOTS / f"flarewatch-incident-live-{width}.png"), full_page=True)
                assert not blocked, blocked
                page.close()
        finally:
            browser.close()
    import httpx

    with transaction(sessions) as session:
        from monitor.core import accounts

        token = accounts.issue_token(session, accounts.get_user(session, "mona"), "t", T0)
    body = httpx.get(f"{base}/api/incidents/{incident_id}/timeline", headers={"Authorization": f"Bearer {token}"}).json()
    assert body["chart"]["until"] <= clock.now().isoformat()  # the chart's range ends at now


def test_weekly_page_shows_the_trend_and_every_column_at_800px(served) -> None:  # noqa: ANN001
    from playwright.sync_api import expect, sync_playwright

    base, sessions, clock = served
    with transaction(sessions) as session:
        crafted_incident(session, brand="acme", shift=clock.now() - T0 - timedelta(weeks=1, days=1))
        crafted_incident(session, brand="acme", shift=clock.now() - T0 - timedelta(days=1))
    with sync_playwright() as pw:
        browser = _browser(pw)
        try:
            page = browser.new_page(viewport={"width": 800, "height": 900})
            _login(page, base, "mona", "/reports/weekly")
            page.goto(f"{base}/reports/weekly?brand=acme&weeks=3")
            expect(page.locator("svg.weekly-chart polyline[data-series=time_to_detect]")).to_have_count(1)
            box = page.locator(".scroll:has(table.weekly)")
            page.screenshot(path=str(SHOTS / "flarewatch-weekly-800.png"), full_page=True)
            assert box.evaluate("el => el.scrollWidth <= el.clientWidth"), box.evaluate("el => [el.scrollWidth, el.clientWidth]")
            page.screenshot(path=str(SHOTS / "flarewatch-weekly-800.png"), full_page=True)
            page.goto(f"{base}/admin/users")  # a refusal keeps the navigation bar
            expect(page.get_by_role("link", name="Incidents")).to_be_visible()
        finally:
            browser.close()


def test_api_docs_work_offline_under_the_csp(served) -> None:  # noqa: ANN001
    from playwright.sync_api import expect, sync_playwright

    base, _, _ = served
    with sync_playwright() as pw:
        browser = _browser(pw)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            outside: list[str] = []
            page.route("**/*", lambda route: (outside.append(route.request.url), route.abort())
                       if not route.request.url.startswith(base) else route.continue_())
            blocked: list[str] = []
            page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
            page.goto(f"{base}/docs")
            expect(page).to_have_url(f"{base}/api/docs")
            expect(page.locator(".swagger-ui .info .title")).to_contain_text("flarewatch", timeout=15_000)
            expect(page.locator(".opblock-tag", has_text="queue")).to_be_visible()
            assert not outside and not blocked, (outside, blocked)
        finally:
            browser.close()
