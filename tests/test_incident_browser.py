"""In a real browser (chromium via playwright): a manager acknowledges and resolves an incident from its
page, and the page shows each new state without reloading; CSP-clean (no inline script)."""
from __future__ import annotations

from sqlalchemy import select

from monitor.core.storage.db import transaction
from monitor.core.storage.schema import Incident, IncidentEvent
from tests.queue_seed import add_incident
from tests.test_web_browser import CHROMIUM, SHOTS, pytestmark, served  # noqa: F401


def test_acknowledge_and_resolve_from_the_incident_page(served) -> None:  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    base, sessions = served
    with transaction(sessions) as session:
        incident_id = add_incident(session, title="<img src=x onerror=alert(1)> checkout down").id
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM),
                                     args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        try:
            page = browser.new_page()
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
            page.on("response", lambda r: problems.append(f"{r.status} {r.url}")
                    if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
            page.on("dialog", lambda d: (problems.append(f"dialog {d.message}"), d.dismiss()))
            page.goto(f"{base}/login?next=/incidents/{incident_id}")
            page.fill("input[name=username]", "mona")
            page.fill("input[name=password]", "mona-password")
            page.click("button[type=submit]")
            expect(page).to_have_url(f"{base}/incidents/{incident_id}")
            page.evaluate("window.__stayed = true")  # survives only if the page is never reloaded

            page.click("button:has-text('Acknowledge')")
            # the page re-renders its chart and report on each refresh: slow on a loaded machine
            expect(page.locator("#incident-ack")).to_contain_text("by mona", timeout=20_000)
            expect(page.locator("[data-flash]")).to_contain_text(f"incident {incident_id} acknowledged by mona")
            expect(page.locator("button:has-text('Acknowledge')")).to_have_count(0)

            page.click("button:has-text('Resolve')")
            expect(page.locator("#incident-status")).to_have_text("resolved", timeout=20_000)
            expect(page.locator("[data-flash]")).to_contain_text(f"incident {incident_id} resolved by mona")
            expect(page.locator("button:has-text('Re-open')")).to_be_visible()
            assert page.evaluate("window.__stayed") is True
            page.screenshot(path=str(SHOTS / "flarewatch-incident-actions.png"), full_page=True)
            assert problems == [], problems
        finally:
            browser.close()
    with sessions() as session:
        incident = session.get(Incident, incident_id)
        assert incident.status == "resolved" and incident.acknowledged_by == "mona"
        kinds = [(e.kind, e.actor, (e.data or {}).get("via")) for e in session.scalars(
            select(IncidentEvent).where(IncidentEvent.incident_id == incident_id).order_by(IncidentEvent.id))]
        assert kinds == [("acknowledged", "mona", "web"), ("resolved", "mona", "web")]
