"""WeCom and DingTalk group robots, against a local server that checks keys and signatures as they do."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from alerts.delivery import deliver_pending
from alerts.dingtalk import DingTalkSender
from alerts.robots import RobotPacer, escape_robot_markdown, fit_bytes
from alerts.senders import Senders, build_senders
from alerts.settings import AlertSettings
from monitor.core.storage.db import session_factory
from tests.alerts_support import HOSTILE, add_event, clock, drain, open_incident, outbox  # noqa: F401

WECOM_KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
DING_TOKEN = "dt-token"
DING_SECRET = "SEC0123456789abcdef"


class Robots:
    """One server for both services: /cgi-bin/webhook/send (WeCom) and /robot/send (DingTalk)."""

    def __init__(self, now_ms: Any) -> None:
        self.requests: list[tuple[str, dict[str, str], dict[str, Any]]] = []  # (service, query, body)
        self.answers: list[tuple[int, dict[str, Any] | str]] = []  # scripted, then the real check
        self.now_ms = now_ms
        robots = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                service = "wecom" if parts.path.startswith("/cgi-bin") else "dingtalk"
                robots.requests.append((service, query, body))
                status, answer = robots.answers.pop(0) if robots.answers else (200, robots.check(service, query))
                data = (answer if isinstance(answer, str) else json.dumps(answer)).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def check(self, service: str, query: dict[str, str]) -> dict[str, Any]:
        if service == "wecom":
            return {"errcode": 0, "errmsg": "ok"} if query.get("key") == WECOM_KEY else \
                {"errcode": 93000, "errmsg": "invalid webhook url"}
        if query.get("access_token") != DING_TOKEN:
            return {"errcode": 300001, "errmsg": "token is not exist"}
        timestamp = query.get("timestamp", "")
        # DingTalk's own check, written from its documentation (not with our sign()).
        expected = base64.b64encode(hmac.new(DING_SECRET.encode(), f"{timestamp}\n{DING_SECRET}".encode(),
                                             hashlib.sha256).digest()).decode()
        if not timestamp.isdigit() or abs(int(timestamp) - self.now_ms()) > 3_600_000 \
                or not hmac.compare_digest(expected, query.get("sign", "")):
            return {"errcode": 310000, "errmsg": "sign not match"}
        return {"errcode": 0, "errmsg": "ok"}


@pytest.fixture
def robots(clock) -> Iterator[Robots]:  # noqa: F811
    server = Robots(lambda: int(clock.now().timestamp() * 1000))
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def sessions(sqlite_engine):
    return session_factory(sqlite_engine)


def _settings(robots: Robots, **overrides: Any) -> AlertSettings:
    values: dict[str, Any] = {
        "wecom": {"support": {"key": WECOM_KEY, "base_url": f"{robots.base}/cgi-bin/webhook/send"}},
        "dingtalk": {"support": {"access_token": DING_TOKEN, "secret": DING_SECRET, "mention_mobiles": ["13800000000"],
                                 "base_url": f"{robots.base}/robot/send"}},
        "escalation": [{"levels": [{"wecom": ["support"], "dingtalk": ["support"]}]}],
    }
    for key, value in overrides.items():
        values[key] = {**values[key], **value} if isinstance(value, dict) and key in values else value
    return AlertSettings.model_validate(values)


def test_both_robots_get_a_signed_escaped_markdown_alert(sessions, clock, robots) -> None:  # noqa: F811
    settings = _settings(robots)
    incident_id = open_incident(sessions, settings, clock.now(), posts=[(HOSTILE + " [click](https://evil.example)",
                                                                       "<font color=red>@all</font>", 50_000)])
    drain(sessions, build_senders(settings), clock)
    assert [(r.channel, r.status) for r in outbox(sessions)] == [("wecom", "sent"), ("dingtalk", "sent")]
    (_, wq, wecom), (_, dq, ding) = robots.requests
    assert wq == {"key": WECOM_KEY} and wecom["msgtype"] == "markdown"
    assert set(dq) == {"access_token", "timestamp", "sign"} and ding["msgtype"] == "markdown"
    assert ding["at"] == {"atMobiles": ["13800000000"], "isAtAll": False}
    for text in (wecom["markdown"]["content"], ding["markdown"]["text"]):
        assert text.startswith("### SEV-2 acme: negative spike")
        assert "42 negative posts in 15 min" in text
        # No tag, mention or link of the post's making survives: look-alike brackets, defused @.
        post_line = next(line for line in text.split("\n\n") if line.startswith(">"))
        assert not any(ch in post_line[1:] for ch in "<>[]") and "@all" not in post_line
        assert "＜font color=red＞" in post_line and "［click］(https://evil.example)" in post_line
        assert "退款" not in text and "\\_" not in post_line.split(":", 1)[0]
    assert ding["markdown"]["text"].endswith("@13800000000")  # only the configured number is pinged
    add_event(sessions, settings, incident_id, "severity_changed", clock.advance(timedelta(minutes=1)),
              data={"from": 2, "to": 3}, severity=3)
    drain(sessions, build_senders(settings), clock)
    assert "**Severity up: SEV-2 to SEV-3**" in robots.requests[-1][2]["markdown"]["text"]


def test_refusals_fail_at_once_with_the_reason_and_never_show_the_key(sessions, clock, robots) -> None:  # noqa: F811
    settings = _settings(robots, wecom={"support": {"key": "wrong", "base_url": f"{robots.base}/cgi-bin/webhook/send"}},
                         dingtalk={"support": {"access_token": DING_TOKEN, "secret": "SECwrong",
                                               "base_url": f"{robots.base}/robot/send"}})
    open_incident(sessions, settings, clock.now())
    drain(sessions, build_senders(settings), clock)
    rows = {r.channel: r for r in outbox(sessions)}
    assert rows["wecom"].status == "failed" and "errcode 93000 invalid webhook url" in rows["wecom"].last_error
    assert rows["dingtalk"].status == "failed" and "errcode 310000 sign not match" in rows["dingtalk"].last_error
    assert len(robots.requests) == 2 and "wrong" not in rows["wecom"].last_error


def test_rate_limits_busy_and_5xx_are_retried(sessions, clock, robots) -> None:  # noqa: F811
    settings = _settings(robots)
    robots.answers = [(200, {"errcode": 45009, "errmsg": "api freq out of limit"}),
                      (200, {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"})]
    open_incident(sessions, settings, clock.now())
    senders = build_senders(settings)
    deliver_pending(sessions, senders, clock, 50)
    rows = {r.channel: r for r in outbox(sessions)}
    assert rows["wecom"].status == rows["dingtalk"].status == "pending"
    assert rows["wecom"].next_attempt_at == clock.now() + timedelta(seconds=60)
    assert rows["dingtalk"].next_attempt_at == clock.now() + timedelta(minutes=10)  # DingTalk mutes for 10 min
    robots.answers = [(502, "bad gateway"), (200, "<html>not json</html>")]
    clock.advance(timedelta(minutes=10))
    deliver_pending(sessions, senders, clock, 50)
    assert {r.status for r in outbox(sessions)} == {"pending"}
    clock.advance(timedelta(minutes=1))
    drain(sessions, senders, clock)
    assert {r.status for r in outbox(sessions)} == {"sent"}


def test_pacing_keeps_each_robot_under_its_limit(sessions, clock, robots) -> None:  # noqa: F811
    settings = _settings(robots, escalation=[{"levels": [{"dingtalk": ["support"]}]}])
    sender = DingTalkSender(settings.dingtalk, pacer=RobotPacer("2 per minute"))
    for _ in range(3):
        open_incident(sessions, settings, clock.now())
    deliver_pending(sessions, Senders({"dingtalk": sender}, settings), clock, 50)
    statuses = [(r.status, r.attempts) for r in outbox(sessions)]
    assert statuses[:2] == [("sent", 1), ("sent", 1)]
    third = outbox(sessions)[2]
    assert (third.status, third.attempts) == ("pending", 0)  # deferred: not sent, no attempt used
    assert timedelta(seconds=1) <= third.next_attempt_at - clock.now() <= timedelta(seconds=60)
    assert len(robots.requests) == 2


def test_text_messages_and_byte_limits() -> None:
    assert escape_robot_markdown("a *b* _c_ `d` #e <@U1> [x](y) @所有人\x1b[31m") == \
        "a \\*b\\* \\_c\\_ \\`d\\` \\#e ＜@\u2060U1＞ ［x］(y) @\u2060所有人［31m"
    text = "退款" * 3000
    cut = fit_bytes(text, 4096)
    assert len(cut.encode()) <= 4096 and cut.endswith("…") and cut[:-1] == text[: len(cut) - 1]
    assert fit_bytes("short", 10) == "short"


def test_settings_check_robot_references_and_numbers() -> None:
    with pytest.raises(ValueError, match="wecom robot 'nope' has no"):
        AlertSettings.model_validate({"escalation": [{"levels": [{"wecom": ["nope"]}]}]})
    with pytest.raises(ValueError, match="not a phone number"):
        AlertSettings.model_validate({"dingtalk": {"a": {"access_token": "t", "mention_mobiles": ["+86 138"]}}})
    with pytest.raises(ValueError, match="Extra inputs"):
        AlertSettings.model_validate({"wecom": {"a": {"key": "k", "url": "https://x"}}})
    settings = AlertSettings.model_validate({"dingtalk": {"a": {"access_token": "t", "secret": ""}},
                                             "escalation": [{"levels": [{"dingtalk": ["a"]}]}]})
    assert settings.dingtalk["a"].secret is None


def test_an_oversized_answer_is_not_buffered_and_the_alert_is_retried(sessions, clock, robots) -> None:  # noqa: F811
    """Issue 17 #3 for alerts: a reply is a few dozen bytes; a huge one is cut off while it streams in."""
    settings = _settings(robots)
    robots.answers = [(200, "x" * (8 * 1024 * 1024)), (200, "x" * (8 * 1024 * 1024))]
    open_incident(sessions, settings, clock.now())
    senders = build_senders(settings)
    deliver_pending(sessions, senders, clock, 50)
    rows = outbox(sessions)
    assert {r.status for r in rows} == {"pending"}
    assert all("more than 65,536 bytes" in (r.last_error or "") for r in rows), [r.last_error for r in rows]
    clock.advance(timedelta(minutes=1))
    drain(sessions, senders, clock)
    assert {r.status for r in outbox(sessions)} == {"sent"}
