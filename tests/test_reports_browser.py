"""In a real browser (Debian's chromium via playwright): the exported HTML report opens offline and
shows the chart, and the incident page shows it too. Screenshots go to $FLAREWATCH_SCREENSHOTS (/tmp)."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from monitor.detection.settings import DetectionSettings
from monitor.reports.export import render_html
from monitor.reports.timeline import build_timeline
from monitor.core.storage.db import transaction
from tests.reports_seed import add_baseline, crafted_incident, minutes
from tests.test_web_browser import CHROMIUM, SHOTS, served  # noqa: F401 - the served app fixture

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium "
                                                     "(apt-get install chromium; .ci/run installs it)"),
]
TEXTS = ["海底捞的服务太差了，排队两小时还被赶出来", '<img src=x onerror="window.__xss=1">acme',
         "acme support is down again", "refund please"]
SERIES = ["volume", "negative", "expected_volume", "expected_negative", "threshold"]


def _seed(sessions: sessionmaker[Session]) -> int:
    with transaction(sessions) as session:
        incident_id = crafted_incident(session, texts=TEXTS)
        add_baseline(session, "acme")
    return incident_id


def _browser(pw):  # noqa: ANN001, ANN202
    return pw.chromium.launch(executable_path=str(CHROMIUM), args=[
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"])


def _check_chart(page) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    chart = page.locator("svg.incident-chart")
    expect(chart).to_be_visible()
    box = chart.bounding_box()
    assert box is not None and box["width"] > 600 and box["height"] > 200
    for key in SERIES:
        line = chart.locator(f'polyline[data-series="{key}"]')
        expect(line).to_have_count(1)
        assert line.bounding_box()["width"] > 0.9 * box["width"] - 100  # drawn across the whole plot
    kinds = chart.locator("g.marker").evaluate_all("els => els.map(e => e.dataset.kind)")
    assert kinds[:3] == ["started", "detected", "alert"] and "acknowledged" in kinds and "first_answer" in kinds
    assert page.evaluate("window.__xss") is None


def test_exported_report_opens_offline_and_shows_the_chart(sqlite_engine, tmp_path: Path) -> None:  # noqa: ANN001
    from playwright.sync_api import expect, sync_playwright

    from monitor.core.storage.db import session_factory

    sessions = session_factory(sqlite_engine)
    incident_id = _seed(sessions)
    with transaction(sessions) as session:
        timeline = build_timeline(session, incident_id, DetectionSettings(), minutes(200))
    report = tmp_path / f"incident-{incident_id}.html"
    report.write_text(render_html(timeline), encoding="utf-8")
    with sync_playwright() as pw:
        browser = _browser(pw)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(report.as_uri())
            _check_chart(page)
            expect(page.locator("td.post-text").first).to_have_text(TEXTS[0])
            expect(page.locator("table.figures")).to_contain_text("20m 30s")
            assert requests == [report.as_uri()]  # self-contained: nothing else was fetched
            page.screenshot(path=str(SHOTS / "flarewatch-incident-report.png"), full_page=True)
        finally:
            browser.close()


def test_incident_page_shows_the_chart(served) -> None:  # noqa: ANN001, F811
    from playwright.sync_api import expect, sync_playwright

    base, sessions = served
    incident_id = _seed(sessions)
    with sync_playwright() as pw:
        browser = _browser(pw)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{base}/incidents/{incident_id}")
            page.fill("input[name=username]", "mona")
            page.fill("input[name=password]", "mona-password")
            page.click("button[type=submit]")
            expect(page).to_have_url(f"{base}/incidents/{incident_id}")
            _check_chart(page)
            expect(page.locator(".report-posts")).to_contain_text("answered by alice")
            with page.expect_download() as download:
                page.click("text=posts CSV")
            assert TEXTS[0] in Path(download.value.path()).read_bytes().decode("utf-8-sig")
            page.screenshot(path=str(SHOTS / "flarewatch-incident-page.png"), full_page=True)
            page.click("text=Incidents")
            page.click("text=Weekly response figures")
            expect(page.locator("h1")).to_have_text("Weekly response figures")
            page.fill("input[name=weeks]", "40")  # the crafted incident is from July; the clock is the system's
            page.click("text=Show")
            expect(page.locator("table.weekly").first).to_contain_text("4m 30s")
            page.screenshot(path=str(SHOTS / "flarewatch-weekly-page.png"), full_page=True)
        finally:
            browser.close()
