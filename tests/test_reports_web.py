"""The report API and the incident page's chart, figures and downloads (both database backends)."""
from __future__ import annotations

import csv
import io

from monitor.core.storage.db import transaction
from tests.reports_seed import add_baseline, crafted_incident, minutes
from tests.test_web_pages import login
from tests.web_fixtures import WebEnv, web  # noqa: F401 - the fixture

CHINESE = "海底捞的服务太差了"


def _seed(env: WebEnv) -> int:
    env.clock.set(minutes(200))
    with transaction(env.sessions) as session:
        incident_id = crafted_incident(session, texts=[CHINESE, "=cmd|' /C calc'!A0", "<b>bold</b>", "fine"])
        add_baseline(session, "acme")
    return incident_id


def test_timeline_api(web: WebEnv) -> None:  # noqa: F811
    incident_id = _seed(web)
    response = web.client.get(f"/api/incidents/{incident_id}/timeline", headers=web.auth("mona"))
    assert response.status_code == 200, response.text
    body = response.json()
    figures = body["figures"]
    assert figures["time_to_detect_seconds"] == 270 and figures["time_to_acknowledge_seconds"] == 1230
    assert figures["time_to_first_answer_seconds"] == 2130 and figures["time_to_resolve_seconds"] == 5130
    assert figures["posts"]["share_answered"] == 0.5 and figures["posts"]["answered_by_agent"] == {"alice": 1, "bob": 1}
    assert [m["kind"] for m in body["chart"]["markers"]][:3] == ["started", "detected", "alert"]
    assert body["chart"]["bucket_minutes"] == 1 and body["chart"]["threshold_window_minutes"] == 5
    spike = [p for p in body["chart"]["points"] if p["negative"] == 9]
    assert len(spike) == 30 and all(p["expected_negative"] < p["threshold"] < 9 for p in spike)
    assert [e["kind"] for e in body["events"]][0] == "opened" and body["events"][-1]["actor"] == "mona"
    assert {p["state"] for p in body["posts"]} == {"answered", "dismissed", "unclaimed"}
    assert body["posts"][0]["text"] == CHINESE


def test_report_api_roles_and_errors(web: WebEnv) -> None:  # noqa: F811
    incident_id = _seed(web)
    url = f"/api/incidents/{incident_id}/timeline"
    assert web.client.get(url).status_code == 401
    forbidden = web.client.get(url, headers=web.auth("alice"))
    assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "forbidden"
    missing = web.client.get("/api/incidents/999999/timeline", headers=web.auth("mona"))
    assert missing.status_code == 404 and "does not exist" in missing.json()["error"]["message"]
    bad = web.client.get(f"/api/incidents/{incident_id}/report?format=pdf", headers=web.auth("mona"))
    assert bad.status_code == 422 and "error" in bad.json()
    assert web.client.get("/api/reports/weekly?weeks=0", headers=web.auth("mona")).status_code == 422


def test_report_api_formats(web: WebEnv) -> None:  # noqa: F811
    incident_id = _seed(web)
    base = f"/api/incidents/{incident_id}/report"
    html = web.client.get(f"{base}?format=html", headers=web.auth("mona"))
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "style-src 'unsafe-inline'" in html.headers["content-security-policy"]
    assert "script-src" not in html.headers["content-security-policy"]  # default-src 'none': no script at all
    assert f'filename="incident-{incident_id}.html"' in html.headers["content-disposition"]
    assert 'data-series="negative"' in html.text and CHINESE in html.text and "<b>bold</b>" not in html.text
    md = web.client.get(f"{base}?format=md", headers=web.auth("mona"))
    assert md.status_code == 200 and md.text.startswith(f"# Incident {incident_id}")
    posts = web.client.get(f"{base}?format=csv&table=posts", headers=web.auth("mona"))
    rows = list(csv.DictReader(io.StringIO(posts.content.decode("utf-8-sig"))))
    assert [r["text"] for r in rows][:2] == [CHINESE, "'=cmd|' /C calc'!A0"]
    events = web.client.get(f"{base}?format=csv", headers=web.auth("mona"))
    assert events.text.lstrip("\ufeff").startswith("\"incident_id\",\"at\",\"kind\",\"actor\",\"summary\"")  # every cell quoted


def test_weekly_api(web: WebEnv) -> None:  # noqa: F811
    _seed(web)
    response = web.client.get("/api/reports/weekly?brand=acme&weeks=2", headers=web.auth("mona"))
    assert response.status_code == 200, response.text
    weeks = response.json()["weeks"]
    assert [w["week"] for w in weeks] == ["2026-W27", "2026-W28"] and [w["incidents"] for w in weeks] == [0, 1]
    assert weeks[1]["median_seconds"]["time_to_detect"] == 270 and weeks[1]["posts"]["share_answered"] == 0.5
    assert web.client.get("/api/reports/weekly", headers=web.auth("bob")).status_code == 403


def test_incident_page_shows_chart_figures_and_downloads(web: WebEnv) -> None:  # noqa: F811
    incident_id = _seed(web)
    login(web, "mona")
    page = web.client.get(f"/incidents/{incident_id}")
    assert page.status_code == 200
    text = page.text
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="incident-chart"' in text
    assert 'data-series="threshold"' in text and "Time to acknowledge" in text and "20m 30s" in text
    assert "answered by alice" in text and CHINESE in text and "&lt;b&gt;bold&lt;/b&gt;" in text
    assert "<h2>Timeline</h2>" in text  # the page's own event list is still there
    download = web.client.get(f"/incidents/{incident_id}/report?format=csv&table=posts")
    assert download.status_code == 200 and CHINESE in download.content.decode("utf-8-sig")
    web.client.post("/logout", data={"csrf_token": login(web, "alice")})
    login(web, "alice")
    assert web.client.get(f"/incidents/{incident_id}/report", follow_redirects=False).status_code == 403


def test_weekly_page(web: WebEnv) -> None:  # noqa: F811
    _seed(web)
    login(web, "mona")
    page = web.client.get("/reports/weekly?brand=acme&weeks=2")
    assert page.status_code == 200, page.text
    w28, w27 = "2026\u2011W28", "2026\u2011W27"  # non-breaking hyphens keep the label on one line
    assert "Weekly response figures" in page.text and w28 in page.text and "4m 30s" in page.text
    assert page.text.index(w28) < page.text.index(w27)  # newest first
    assert web.client.get("/reports/weekly?weeks=0").status_code in (400, 422)
    assert 'href="/reports/weekly"' in web.client.get("/incidents").text
    login(web, "alice")
    assert web.client.get("/reports/weekly", follow_redirects=False).status_code == 403
