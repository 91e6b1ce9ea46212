"""Report files: HTML, Markdown and CSV for incidents with no answers, many posts, Chinese and hostile
text; the CLI; the weekly Slack digest against the local Slack server."""
from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from pathlib import Path
from xml.etree import ElementTree

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from monitor.cli import app
from monitor.detection.settings import DetectionSettings
from monitor.reports.chart import render_svg
from alerts.slack import PostError, post_message
from monitor.reports.digest import digest_message
from monitor.reports.export import csv_cell, md_escape, render, render_csv, render_html, render_markdown
from monitor.reports.figures import weekly_figures
from monitor.reports.timeline import Timeline, build_timeline
from monitor.core.storage.db import session_factory, transaction
from monitor.core.storage.schema import Incident
from tests.alerts_support import slack_settings
from tests.reports_seed import T, add_baseline, crafted_incident, minutes
from tests.slack_server import SlackServer

CHINESE = "海底捞的服务太差了，排队两小时还被赶出来 😡 #维权"
HOSTILE = '<script>alert(1)</script><img src=x onerror=alert(2)> ]]> &amp; "quoted"'
SVG = "{http://www.w3.org/2000/svg}"


def timeline(sessions: sessionmaker[Session], **seed: object) -> Timeline:
    with transaction(sessions) as session:
        incident_id = crafted_incident(session, **seed)  # type: ignore[arg-type]
        add_baseline(session, str(seed.get("brand", "acme")))
    with transaction(sessions) as session:
        return build_timeline(session, incident_id, DetectionSettings(), minutes(200))


def svg_series(svg: str) -> dict[str, list[tuple[float, float]]]:
    root = ElementTree.fromstring(svg)  # also proves the SVG is well-formed XML
    out = {}
    for line in root.iter(f"{SVG}polyline"):
        out[line.get("data-series")] = [tuple(map(float, p.split(","))) for p in line.get("points", "").split()]
    return out


def test_chart_has_every_series_and_marker(sessions: sessionmaker[Session]) -> None:
    t = timeline(sessions)
    series = svg_series(render_svg(t))
    assert set(series) == {"volume", "negative", "expected_volume", "expected_negative", "threshold"}
    assert len(series["negative"]) == len(t.points)
    # Higher counts are drawn higher (smaller y): the spike's negatives sit above the quiet minutes'.
    quiet = next(i for i, p in enumerate(t.points) if p.negative == 1)
    spike = next(i for i, p in enumerate(t.points) if p.negative == 9)
    assert series["negative"][spike][1] < series["negative"][quiet][1]
    kinds = [m.get("data-kind") for m in ElementTree.fromstring(render_svg(t)).iter(f"{SVG}g")]
    assert kinds == ["started", "detected", "alert", "severity", "escalated", "acknowledged", "first_answer", "resolved"]
    # The threshold is above the expected negatives and below the spike (which fired).
    p = t.points[spike]
    assert p.threshold is not None and p.expected_negative < p.threshold < p.negative


def test_no_answers(sessions: sessionmaker[Session]) -> None:
    t = timeline(sessions, answered=False)
    assert t.figures.first_answer_at is None and t.figures.posts.share_answered == 0.0
    html, md = render_html(t), render_markdown(t)
    assert "no post answered" in html and "no post answered" in md
    assert "first_answer" not in [m.kind for m in t.markers]
    assert all(p.state == "unclaimed" for p in t.posts)
    assert "nobody answered" in md


def test_many_posts(sessions: sessionmaker[Session]) -> None:
    texts = [f"acme post number {i} is angry" for i in range(500)]
    t = timeline(sessions, texts=texts)
    assert len(t.posts) == 500
    assert [p.urgency for p in t.posts] == sorted((p.urgency for p in t.posts), reverse=True)
    rows = list(csv.reader(io.StringIO(render_csv(t, "posts").removeprefix("\ufeff"))))
    assert len(rows) == 501 and {r[7] for r in rows[1:]} == set(texts)
    html = render_html(t)
    assert html.count('<tr class="st-') == 500
    assert render_markdown(t).count("acme post number") == 500
    assert t.figures.posts.flagged == 500 and t.figures.posts.answered == 250


def test_chinese_text_round_trips(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    t = timeline(sessions, texts=[CHINESE, "差评", "退款", "客服"])
    for table in ("posts", "events"):
        body, media_type, name = render(t, "csv", table)
        assert body.startswith("\ufeff") and "utf-8" in media_type and name.endswith(f"-{table}.csv")
    path = tmp_path / "posts.csv"
    path.write_bytes(render_csv(t, "posts").encode("utf-8"))
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["text"] == CHINESE and rows[0]["incident_id"] == str(t.incident.id)
    html = render_html(t)
    assert CHINESE in html and '<meta charset="utf-8">' in html
    assert md_escape(CHINESE).replace("\\#", "#") == CHINESE and "维权" in render_markdown(t)


def test_csv_cells_never_run_as_formulas(sessions: sessionmaker[Session]) -> None:
    for value in ("=1+2", "+1", "-1", "@SUM(A1)"):
        assert csv_cell(value) == "'" + value
    assert csv_cell("\t=x") == "'\t'=x" and csv_cell("\r=x") == "'\r'=x"  # split at the tab: still text
    assert csv_cell("acme =1") == "acme =1" and csv_cell(None) == "" and csv_cell(3) == "3"
    t = timeline(sessions)
    rows = list(csv.reader(io.StringIO(render_csv(t, "posts").removeprefix("\ufeff"))))
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    assert "'=HYPERLINK(\"http://evil.example\",\"click\")" in [r[7] for r in rows]
    assert "'@here acme refund scam" in [r[7] for r in rows]


def test_hostile_text_is_escaped_everywhere(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        incident_id = crafted_incident(session, texts=[HOSTILE])
        incident = session.get(Incident, incident_id)
        incident.acknowledged_by = HOSTILE  # ends up in a chart marker label
        incident.title = HOSTILE
    with transaction(sessions) as session:
        t = build_timeline(session, incident_id, DetectionSettings(), minutes(200))
    svg = render_svg(t)
    ElementTree.fromstring(svg)
    html, md = render_html(t), render_markdown(t)
    for text in (svg, html):
        assert "<script>" not in text and "<img" not in text
        assert "&lt;script&gt;" in text
    assert not re.search(r"(?<!\\)<(script|img)", md) and "\\<script\\>" in md
    # Markdown table cells stay one cell: no raw pipes or newlines from post text.
    assert md_escape("a|b\nc") == "a\\|b c"


def test_javascript_urls_are_not_links(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        incident_id = crafted_incident(session)
        from monitor.core.storage.schema import IncidentPost, Post
        post_id = session.query(IncidentPost.post_id).filter_by(incident_id=incident_id).first()[0]
        session.get(Post, post_id).url = "javascript:alert(1)"
    with transaction(sessions) as session:
        t = build_timeline(session, incident_id, DetectionSettings(), minutes(200))
    assert "javascript:" not in render_html(t) and "javascript:" not in render_markdown(t)


def test_unknown_format_is_a_clear_error(sessions: sessionmaker[Session]) -> None:
    t = timeline(sessions)
    with pytest.raises(ValueError, match="html, md or csv"):
        render(t, "pdf")
    with pytest.raises(ValueError, match="events or posts"):
        render(t, "csv", "people")


# -- CLI ------------------------------------------------------------------------------------------


def _config(tmp_path: Path, url: str, **alerts: str) -> Path:
    lines = ["[database]", f'url = "{url}"', "[alerts]", *[f'{k} = "{v}"' for k, v in alerts.items()],
             "[[brands]]", 'name = "acme"', 'terms = ["acme"]']
    path = tmp_path / "flarewatch.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_cli_incident_report(sqlite_engine: Engine, tmp_path: Path) -> None:
    sessions = session_factory(sqlite_engine)
    with transaction(sessions) as session:
        incident_id = crafted_incident(session, texts=[CHINESE, "=1+1", "b", "c"])
    config = _config(tmp_path, sqlite_engine.url.render_as_string(hide_password=False))
    runner = CliRunner()
    out = tmp_path / "report.html"
    result = runner.invoke(app, ["report", "incident", str(incident_id), "--format", "html", "--out", str(out),
                                 "--config", str(config)])
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert "<svg" in html and CHINESE in html
    assert not re.search(r"<link|<script|<img|src=|url\(", html)  # self-contained: nothing to fetch
    result = runner.invoke(app, ["report", "incident", str(incident_id), "--format", "md", "--config", str(config)])
    assert result.exit_code == 0 and "## Timeline" in result.output
    result = runner.invoke(app, ["report", "incident", str(incident_id), "--format", "csv", "--table", "posts",
                                 "--config", str(config)])
    assert result.exit_code == 0 and "'=1+1" in result.output
    result = runner.invoke(app, ["report", "incident", "999", "--config", str(config)])
    assert result.exit_code == 1 and "incident 999 does not exist" in result.output
    result = runner.invoke(app, ["report", "incident", str(incident_id), "--format", "pdf", "--config", str(config)])
    assert result.exit_code == 2 and "html, md or csv" in result.output


def test_cli_weekly_and_slack_digest(sqlite_engine: Engine, tmp_path: Path) -> None:
    sessions = session_factory(sqlite_engine)
    with transaction(sessions) as session:
        crafted_incident(session, brand="<!channel> acme", shift=timedelta(days=-3000))  # far outside the weeks
    with SlackServer() as server:
        config = _config(tmp_path, sqlite_engine.url.render_as_string(hide_password=False),
                         slack_bot_token="xoxb-test-token", slack_base_url=server.base_url,
                         default_channel="#alerts")
        result = CliRunner().invoke(app, ["report", "weekly", "--brand", "acme", "--weeks", "2", "--slack",
                                          "--config", str(config)])
        assert result.exit_code == 0, result.output
        assert "| acme |" in result.output and "posted the digest to #alerts" in result.output
        weeks = [line.split("|")[2].strip() for line in result.output.splitlines() if line.startswith("| acme |")]
        assert weeks == sorted(weeks, reverse=True) and len(weeks) == 2  # newest first, as on the web page
        [message] = server.posts("C0ALERTS01")
        assert "Weekly incident response" in message["text"]
        bad = _config(tmp_path, sqlite_engine.url.render_as_string(hide_password=False),
                      slack_bot_token="xoxb-wrong", slack_base_url=server.base_url)
        result = CliRunner().invoke(app, ["report", "weekly", "--slack", "--config", str(bad)])
        assert result.exit_code == 1 and "invalid_auth" in result.output
    unconfigured = _config(tmp_path, sqlite_engine.url.render_as_string(hide_password=False))
    result = CliRunner().invoke(app, ["report", "weekly", "--slack", "--config", str(unconfigured)])
    assert result.exit_code == 2 and "alerts.slack_bot_token" in result.output
    result = CliRunner().invoke(app, ["report", "weekly", "--brand", "Nope", "--config", str(unconfigured)])
    assert result.exit_code == 2 and "unknown brand 'Nope'" in result.output  # not a table of zeros


def test_digest_lists_each_brand_and_escapes_names(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        crafted_incident(session, brand="acme", shift=-timedelta(weeks=1))
        crafted_incident(session, brand="acme")
        crafted_incident(session, brand="<!channel> evil", answered=False)
    with transaction(sessions) as session:
        weeks = weekly_figures(session, None, 2, minutes(200))
    with SlackServer() as server:
        settings = slack_settings(server)
        post_message(settings, digest_message(weeks, "https://flarewatch.example"))
        [message] = server.posts("C0ALERTS01")
        assert SlackServer.mentions(message) == []  # a brand name cannot ping the channel
        body = str(message["blocks"])
        assert "2026-W27" in body and "2026-W28" in body and "&lt;!channel&gt; evil" in body
        assert "answered 50% (±0) (2/4)" in body and "https://flarewatch.example/incidents" in body
    with pytest.raises(PostError, match="not configured"):
        post_message(slack_settings(server).model_copy(update={"slack_bot_token": None}), {"text": "", "blocks": []})
    assert T.weekday() == 0
