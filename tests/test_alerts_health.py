"""Alert health is a state: Slack refusing (invalid_auth), failing (5xx) or unreachable reaches the timeline,
the incident's alert state, /healthz, the page banner, the report, the CLI, and the fallback channel."""
from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from alerts.delivery import deliver_pending
from alerts.health import incident_alerts
from alerts.senders import build_senders
from alerts.slack import check_auth
from monitor.core.clock import SimulatedClock
from monitor.config import parse_config
from monitor.core.storage.db import session_factory, transaction
from monitor.core.storage.schema import IncidentEvent
from monitor.web.app import create_app
from tests.alerts_support import T0, TOKEN, drain, open_incident, outbox
from tests.queue_seed import add_staff
from tests.slack_server import Scripted, SlackServer
from tests.web_fixtures import WebEnv


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(T0)


@pytest.fixture
def slack(clock) -> Iterator[SlackServer]:
    with SlackServer(now=lambda: clock.now().timestamp()) as server:
        yield server


@pytest.fixture
def sessions(sqlite_engine):
    return session_factory(sqlite_engine)


def make_env(sessions, clock, alerts: dict[str, Any], daemon: dict[str, Any] | None = None,
             staff: bool = True) -> WebEnv:
    config = parse_config({"web": {"session_secret": "s" * 32},
                           "alerts": {"slack_seconds_per_message": 0, "slack_timeout_seconds": 1,
                                      "default_channel": "C0ALERTS01", **alerts},
                           "brands": [{"name": "acme", "terms": ["acme"]}]}, env={})
    app = create_app(config, sessions, clock, health=(lambda: daemon) if daemon is not None else None)
    tokens: dict[str, str] = {}
    if staff:
        with transaction(sessions) as session:
            tokens = add_staff(session)
    return WebEnv(app, TestClient(app, raise_server_exceptions=False), sessions, clock, config, tokens)


def login(env: WebEnv, user: str = "mona") -> None:
    import re

    page = env.client.get("/login").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    env.client.post("/login", data={"username": user, "password": f"{user}-password", "csrf_token": csrf,
                                    "next": "/queue"}, follow_redirects=False)


def timeline(sessions, incident_id: int) -> list[tuple[str, dict[str, Any]]]:
    with sessions() as s:
        return [(e.kind, e.data or {}) for e in s.scalars(
            select(IncidentEvent).where(IncidentEvent.incident_id == incident_id).order_by(IncidentEvent.id))]


def test_invalid_auth_is_loud_everywhere(sessions, clock, slack) -> None:
    env = make_env(sessions, clock, {"slack_bot_token": "xoxb-revoked", "slack_base_url": slack.base_url})
    settings = env.config.alerts
    auth = check_auth(settings, clock.now())  # what the daemon does at start
    assert not auth.ok and auth.error == "Slack refused the token: invalid_auth"
    incident_id = open_incident(sessions, settings, clock.now())
    drain(sessions, build_senders(settings), clock)
    assert [r.status for r in outbox(sessions)] == ["failed"]
    kinds = timeline(sessions, incident_id)
    assert [k for k, _ in kinds] == ["opened", "alert_failed"]
    assert kinds[1][1]["channel"] == "slack" and "invalid_auth" in kinds[1][1]["error"]

    body = env.client.get("/healthz").json()
    assert body["ok"] is False and body["status"] == "degraded"
    assert body["reasons"] == [{"check": "alerts", "code": "alerts_failing",
                                "message": "slack C0ALERTS01: Slack refused the message: invalid_auth"}]
    # With the daemon's token check, the reason comes first, before any alert was even tried.
    env_daemon = make_env(sessions, clock, {"slack_bot_token": "xoxb-revoked", "slack_base_url": slack.base_url},
                          daemon={"jobs": {}, "alerts": {"slack_auth": auth.as_dict()}}, staff=False)
    codes = [r["code"] for r in env_daemon.client.get("/healthz").json()["reasons"]]
    assert codes == ["slack_auth_failed", "alerts_failing"]

    api = env.client.get(f"/api/incidents/{incident_id}", headers=env.auth("mona")).json()
    assert api["alert_state"] == "failed" and api["alert_problems"][0]["error"].endswith("invalid_auth")
    login(env)
    page = env.client.get(f"/incidents/{incident_id}").text
    assert "Alerts are not getting through" in page and 'class="alert-state failed"' in page
    assert "could not be delivered to slack C0ALERTS01" in page  # the timeline line
    assert "Alerts are not getting through" in env.client.get("/queue").text  # the banner is on every page
    report = env.client.get(f"/api/incidents/{incident_id}/timeline", headers=env.auth("mona"))
    figures = report.json()["figures"]
    assert figures["first_alert_at"] is None and figures["alerts_failed"] == 1
    assert "alert failed" in [m["label"] for m in report.json()["chart"]["markers"]]


def test_slack_5xx_is_retried_then_recovers(sessions, clock, slack) -> None:
    env = make_env(sessions, clock, {"slack_bot_token": TOKEN, "slack_base_url": slack.base_url})
    settings = env.config.alerts
    slack.script("chat.postMessage", Scripted(status=500, body={"ok": False}), Scripted(status=503, body="down"))
    incident_id = open_incident(sessions, settings, clock.now())
    senders = build_senders(settings)
    deliver_pending(sessions, senders, clock, 50)
    clock.advance(timedelta(seconds=5))
    deliver_pending(sessions, senders, clock, 50)  # the second 5xx: still one timeline event
    assert [k for k, _ in timeline(sessions, incident_id)] == ["opened", "alert_retrying"]
    with sessions() as s:
        assert incident_alerts(s, incident_id).state == "retrying"
    assert env.client.get("/healthz").json()["ok"] is True  # a retry or two is not an outage yet
    clock.advance(timedelta(minutes=6))
    body = env.client.get("/healthz").json()
    assert body["status"] == "degraded" and body["reasons"][0]["code"] == "alerts_stuck"
    assert "Slack error 503" in body["reasons"][0]["message"]
    drain(sessions, senders, clock)
    assert [r.status for r in outbox(sessions)] == ["sent"]
    assert env.client.get("/healthz").json()["ok"] is True
    with sessions() as s:
        assert incident_alerts(s, incident_id).state == "delivered"


def test_unreachable_slack_falls_back_to_a_webhook_and_the_report_counts_that(sessions, clock, slack) -> None:
    from tests.test_alerts_channels import Hook

    hook = Hook()
    try:
        env = make_env(sessions, clock, {
            "slack_bot_token": TOKEN, "slack_base_url": f"http://127.0.0.1:{_closed_port()}/api/", "max_attempts": 2,
            "webhooks": {"ops": {"url": hook.url}}, "fallback": {"channel": "webhook", "target": "ops"}})
        settings = env.config.alerts
        incident_id = open_incident(sessions, settings, clock.now())
        senders = build_senders(settings)
        deliver_pending(sessions, senders, clock, 50)
        assert outbox(sessions)[0].status == "pending" and "Slack unreachable" in outbox(sessions)[0].last_error
        clock.advance(timedelta(minutes=6))
        assert env.client.get("/healthz").json()["reasons"][0]["code"] == "alerts_stuck"
        deliver_pending(sessions, senders, clock, 50)  # the second attempt fails for good: the fallback gets it
        deliver_pending(sessions, senders, clock, 50)
        rows = outbox(sessions)
        assert [(r.channel, r.status) for r in rows] == [("slack", "failed"), ("webhook", "sent")]
        assert json.loads(hook.requests[0][1])["event"]["kind"] == "opened"
        assert [k for k, _ in timeline(sessions, incident_id)] == ["opened", "alert_retrying", "alert_failed"]
        with sessions() as s:
            state = incident_alerts(s, incident_id)
        assert state.state == "failed" and state.delivered == 1  # delivered, but not where it should have been
        # Later events do not go to the fallback by themselves (it only gets what failed).
        from alerts.routing import alerted_targets

        with sessions() as s:
            assert [t.channel for t in alerted_targets(s, incident_id)] == ["slack"]
    finally:
        hook.server.shutdown()
        hook.server.server_close()


def test_health_cli_prints_the_reasons(sessions, clock, slack, tmp_path) -> None:
    from monitor.cli import app

    db = tmp_path / "cli.db"
    config = tmp_path / "flarewatch.toml"
    config.write_text(f"""
[daemon]
data_dir = "{tmp_path}"
[database]
url = "sqlite:///{db}"
[alerts]
slack_bot_token = "xoxb-revoked"
slack_base_url = "{slack.base_url}"
default_channel = "C0ALERTS01"
slack_timeout_seconds = 1
[[brands]]
name = "acme"
terms = ["acme"]
""", encoding="utf-8")
    ok = CliRunner().invoke(app, ["health", "--config", str(config), "--no-slack"])
    assert ok.exit_code == 0 and "flarewatch is ok" in ok.output
    bad = CliRunner().invoke(app, ["health", "--config", str(config)])
    assert bad.exit_code == 1, bad.output
    assert "degraded" in bad.output and "slack_auth_failed" in bad.output and "invalid_auth" in bad.output
    as_json = CliRunner().invoke(app, ["health", "--config", str(config), "--json"])
    assert json.loads(as_json.output)["reasons"][0]["code"] == "slack_auth_failed"
