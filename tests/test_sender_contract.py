"""The contract every alert sender keeps, run against each one's real client and a local peer.

Alertmanager's `RetryTests` and apprise's URL tester are the models: one table of what the service
answers (success, 429 with Retry-After, 5xx, a refusal, no answer at all) and what the delivery
worker must be told (delivered, retry after N seconds, retry, give up, retry). Every sender runs
the whole table; a new channel adds one `Peer` below. A second table checks that hostile post text
(mentions, markup, terminal escapes, header injection) arrives inert in each channel's format.

Senders that reach the network are slack (slack_sdk against tests/slack_server.py), webhook, WeCom
and DingTalk (httpx against tests/httpreplay.py) and email (smtplib against aiosmtpd); the console
has only the escaping row.
"""
from __future__ import annotations

import email
import email.policy
import io
import json
import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope

from alerts.base import AlertJob, Delivered, PermanentError, RetryableError, Sender
from alerts.console import ConsoleSender
from alerts.dingtalk import DingTalkSender, DingTalkSettings
from alerts.email import EmailSender
from alerts.settings import AlertSettings, EmailSettings, WebhookSettings
from alerts.slack import SlackSender
from alerts.view import IncidentView, PostView
from alerts.webhook import WebhookSender
from alerts.wecom import WeComSender, WeComSettings
from tests.httpreplay import Reply, ReplayServer
from tests.slack_server import Scripted, SlackServer

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
HOSTILE = ("<!channel> refund SCAM & <@U0123ABCD> <https://evil.example|click me> @here \x1b[31mred\x1b[0m "
           "\r\nBcc: victim@evil.example\r\n\x07")

OUTCOMES = ["ok", "rate_limited", "rate_limited_date", "server_error", "refused", "unreachable"]
RETRY_DATE = format_datetime(NOW + timedelta(seconds=20), usegmt=True)  # Retry-After as an HTTP date


def job(channel: str, target: str, text: str = "acme refunds are slow", author: str = "someone") -> AlertJob:
    post = PostView(id=1, source="bluesky-acme", author=author, reach=500, url="https://social.example/p/1",
                    text=text, created_at=NOW)
    view = IncidentView(id=7, brand="acme", severity=2, status="open", title="negative spike", opened_at=NOW,
                        started_at=NOW - timedelta(minutes=10), acknowledged_by=None, acknowledged_at=None,
                        snoozed_until=None, escalation_level=0, metric="negative posts", observed=42, expected=3,
                        window_minutes=15, probability=1e-5, trend=[1, 2, 8], top_posts=[post])
    return AlertJob(message_id=1, idempotency_key="incident:7:opened:1", channel=channel, target=target,
                    kind="parent" if channel == "slack" else "opened", attempt=1, created_at=NOW, now=NOW,
                    view=view, event=None)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- the peers ------------------------------------------------------------------------------------


@dataclass
class Built:
    sender: Sender
    job: AlertJob
    received: Callable[[], list[str]]  # what the peer got, as text, for the escaping checks


class SlackPeer:
    name = "slack"
    retry_after_supported = True

    def build(self, stack: ExitStack, outcome: str, text: str = "x", author: str = "a") -> Built:
        server = stack.enter_context(SlackServer(now=lambda: NOW.timestamp()))
        script = {
            "rate_limited": Scripted(status=429, body={"ok": False, "error": "ratelimited"}, headers={"Retry-After": "20"}),
            "rate_limited_date": Scripted(status=429, body={"ok": False, "error": "ratelimited"},
                                          headers={"Retry-After": RETRY_DATE}),
            "server_error": Scripted(status=503, body="<html>upstream connect error</html>"),
            "refused": Scripted(status=200, body={"ok": False, "error": "channel_not_found"}),
        }.get(outcome)
        if script is not None:
            server.script("chat.postMessage", script)
        base_url = f"http://127.0.0.1:{closed_port()}/api/" if outcome == "unreachable" else server.base_url
        settings = AlertSettings.model_validate({"slack_bot_token": "xoxb-test-token", "slack_base_url": base_url,
                                                 "slack_seconds_per_message": 0, "slack_timeout_seconds": 2})

        def received() -> list[str]:
            return [json.dumps(m, ensure_ascii=False) for m in server.posts()]

        sender = SlackSender(settings)
        built = Built(sender, job("slack", "C0ALERTS01", text, author), received)
        built.mentions = lambda: [m for message in server.posts() for m in SlackServer.mentions(message)]  # type: ignore[attr-defined]
        return built


class WebhookPeer:
    name = "webhook"
    retry_after_supported = True

    def build(self, stack: ExitStack, outcome: str, text: str = "x", author: str = "a") -> Built:
        server = stack.enter_context(ReplayServer())
        reply = {
            "ok": Reply(204),
            "rate_limited": Reply(429, {"error": "slow down"}, {"Retry-After": "20"}),
            "rate_limited_date": Reply(429, {"error": "slow down"}, {"Retry-After": RETRY_DATE}),
            "server_error": Reply(503, "<html>maintenance</html>", {"Content-Type": "text/html"}),
            "refused": Reply(410, {"error": "gone"}),
            "unreachable": Reply(drop=True),
        }[outcome]
        server.route("/hook", reply, method="POST")
        sender = WebhookSender({"ops": WebhookSettings(url=server.url + "/hook", secret="s", timeout_seconds=2)})
        return Built(sender, job("webhook", "ops", text, author),
                     lambda: [r.body.decode("utf-8") for r in server.requests_to("/hook")])


class _Mailbox:
    def __init__(self, code: str | None) -> None:
        self.code = code
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd's API
        if self.code:
            return self.code
        self.messages.append(bytes(envelope.content or b""))
        return "250 OK"


class EmailPeer:
    name = "email"
    retry_after_supported = False  # SMTP has no Retry-After

    def build(self, stack: ExitStack, outcome: str, text: str = "x", author: str = "a") -> Built:
        code = {"rate_limited": "421 4.7.0 too many messages, slow down",
                "rate_limited_date": "421 4.7.0 too many messages, slow down", "server_error": "451 4.3.0 local error",
                "refused": "550 5.7.1 relaying denied"}.get(outcome)
        box = _Mailbox(code)
        port = closed_port()
        if outcome != "unreachable":
            controller = Controller(box, hostname="127.0.0.1", port=port)
            controller.start()
            stack.callback(controller.stop)
        sender = EmailSender(EmailSettings(host="127.0.0.1", port=port, starttls=False, sender="fw@acme.example",
                                           timeout_seconds=2))
        return Built(sender, job("email", "oncall@acme.example", text, author),
                     lambda: [m.decode("utf-8", "replace") for m in box.messages])


class RobotPeer:
    """WeCom and DingTalk group robots: JSON POSTs answered with an errcode."""

    retry_after_supported = True

    def __init__(self, name: str, path: str, make: Callable[[str], Sender]) -> None:
        self.name, self.path, self.make = name, path, make

    def build(self, stack: ExitStack, outcome: str, text: str = "x", author: str = "a") -> Built:
        server = stack.enter_context(ReplayServer())
        reply = {
            "ok": Reply(200, {"errcode": 0, "errmsg": "ok"}),
            "rate_limited": Reply(429, {"errcode": -1}, {"Retry-After": "20"}),
            "rate_limited_date": Reply(429, {"errcode": -1}, {"Retry-After": RETRY_DATE}),
            "server_error": Reply(502, "<html>bad gateway</html>", {"Content-Type": "text/html"}),
            "refused": Reply(404, "not found"),
            "unreachable": Reply(drop=True),
        }[outcome]
        server.route(self.path, reply, method="POST")
        return Built(self.make(server.url + self.path), job(self.name, "ops", text, author),
                     lambda: [r.body.decode("utf-8") for r in server.requests_to(self.path)])


PEERS = [
    SlackPeer(), WebhookPeer(), EmailPeer(),
    RobotPeer("wecom", "/cgi-bin/webhook/send",
              lambda url: WeComSender({"ops": WeComSettings(key="k", base_url=url, timeout_seconds=2)})),
    RobotPeer("dingtalk", "/robot/send",
              lambda url: DingTalkSender({"ops": DingTalkSettings(access_token="t", base_url=url, timeout_seconds=2)})),
]


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as resources:
        yield resources


# --- the status / exception table -----------------------------------------------------------------


@pytest.mark.parametrize("peer", PEERS, ids=[p.name for p in PEERS])
@pytest.mark.parametrize("outcome", OUTCOMES)
def test_what_the_service_answers_decides_retry(peer, outcome, stack) -> None:
    built = peer.build(stack, outcome)
    if outcome == "ok":
        assert isinstance(built.sender.send(built.job), Delivered)
        assert len(built.received()) == 1
        return
    expected = PermanentError if outcome == "refused" else RetryableError
    with pytest.raises(expected) as raised:
        built.sender.send(built.job)
    if outcome.startswith("rate_limited") and peer.retry_after_supported:
        assert raised.value.retry_after == pytest.approx(20)
    if outcome == "server_error":
        assert raised.value.retry_after is None  # no hint: the worker's own backoff


# --- hostile text -----------------------------------------------------------------------------------


def test_slack_text_cannot_ping_or_disguise_links(stack) -> None:
    built = SlackPeer().build(stack, "ok", text=HOSTILE, author=HOSTILE)
    built.sender.send(built.job)
    assert built.mentions() == []  # type: ignore[attr-defined]
    sent = "".join(built.received())
    assert "<https://evil.example|" not in sent and "\x1b" not in sent and "\x07" not in sent


def test_webhook_carries_text_verbatim_as_json(stack) -> None:
    built = WebhookPeer().build(stack, "ok", text=HOSTILE, author=HOSTILE)
    built.sender.send(built.job)
    body = json.loads(built.received()[0])
    assert body["incident"]["top_posts"][0]["text"] == HOSTILE  # JSON is data; the receiver escapes for its UI


def test_email_text_cannot_inject_headers_or_terminal_escapes(stack) -> None:
    built = EmailPeer().build(stack, "ok", text=HOSTILE, author=HOSTILE)
    built.sender.send(built.job)
    message = email.message_from_bytes(built.received()[0].encode("utf-8"), policy=email.policy.default)
    assert message["Bcc"] is None and message.get_all("To") == ["oncall@acme.example"]
    body = message.get_content()
    assert "refund SCAM" in body and "\x1b" not in body and "\x07" not in body


def test_console_text_cannot_write_terminal_escapes() -> None:
    out = io.StringIO()
    ConsoleSender(file=out).send(job("console", "console", text=HOSTILE, author=HOSTILE))
    printed = out.getvalue()
    assert "refund SCAM" in printed and "\x1b" not in printed and "\x07" not in printed and "\r" not in printed


def test_every_registered_channel_is_in_the_contract_and_owns_its_settings() -> None:
    from alerts.base import SENDERS
    from alerts.senders import build_senders

    build_senders(AlertSettings())  # loads every channel module
    assert {p.name for p in PEERS} | {"console"} == set(SENDERS)
    fields = AlertSettings.model_fields
    assert SENDERS["webhook"].settings_model is WebhookSettings and SENDERS["email"].settings_model is EmailSettings
    assert SENDERS["wecom"].settings_model is WeComSettings and SENDERS["dingtalk"].settings_model is DingTalkSettings
    assert fields["webhooks"].annotation == dict[str, WebhookSettings] and fields["email"].annotation == EmailSettings | None
    assert fields["wecom"].annotation == dict[str, WeComSettings]
    assert fields["dingtalk"].annotation == dict[str, DingTalkSettings]
    assert set(build_senders(AlertSettings())) == {"console"}  # nothing configured: the console only
