"""Channels for teams without Slack: a signed JSON webhook and e-mail over SMTP (both on local servers)."""
from __future__ import annotations

import email
import json
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from alerts.delivery import deliver_pending
from alerts.senders import build_senders
from alerts.settings import AlertSettings
from alerts.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from tests.alerts_support import HOSTILE, add_event, clock, drain, open_incident, outbox  # noqa: F401

SECRET = "webhook-secret"


class Hook:
    """A webhook receiver that records requests and answers scripted statuses (then 200)."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[tuple[int, dict[str, str]]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.requests.append((dict(self.headers.items()), body))
                status, headers = hook.statuses.pop(0) if hook.statuses else (200, {})
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/flarewatch"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class Mailbox:
    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's API
        self.envelopes.append(envelope)
        return "250 OK"


@pytest.fixture
def hook() -> Iterator[Hook]:
    receiver = Hook()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


def _settings(hook: Hook, smtp_port: int) -> AlertSettings:
    return AlertSettings.model_validate({
        "webhooks": {"ops": {"url": hook.url, "secret": SECRET}},
        "email": {"host": "127.0.0.1", "port": smtp_port, "starttls": False, "sender": "flarewatch@acme.example"},
        "escalation": [{"levels": [{"webhooks": ["ops"], "email": ["oncall@acme.example"]}]}],
    })


def test_webhook_is_signed_retried_and_idempotent(sessions, clock, hook, mailbox) -> None:
    settings = _settings(hook, mailbox[1])
    senders = build_senders(settings)
    hook.statuses = [(503, {}), (429, {"Retry-After": "20"})]
    incident_id = open_incident(sessions, settings, clock.now(), posts=[(HOSTILE, "angry", 500)])
    deliver_pending(sessions, senders, clock, 50)
    clock.advance(timedelta(seconds=5))
    deliver_pending(sessions, senders, clock, 50)  # 429
    webhook_row = next(r for r in outbox(sessions) if r.channel == "webhook")
    assert webhook_row.status == "pending" and webhook_row.next_attempt_at == clock.now() + timedelta(seconds=20)
    clock.advance(timedelta(seconds=20))
    deliver_pending(sessions, senders, clock, 50)
    assert [r.status for r in outbox(sessions)] == ["sent", "sent"]

    assert len(hook.requests) == 3
    keys = {headers["Idempotency-Key"] for headers, _ in hook.requests}
    assert keys == {webhook_row.idempotency_key}  # every retry is recognisably the same alert
    headers, body = hook.requests[-1]
    assert verify(SECRET, headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER])
    assert not verify("wrong", headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER])
    assert not verify(SECRET, headers[TIMESTAMP_HEADER], body + b" ", headers[SIGNATURE_HEADER])
    data = json.loads(body)
    assert data["type"] == "flarewatch.alert" and data["event"]["kind"] == "opened"
    assert data["incident"]["id"] == incident_id and data["incident"]["observed"] == 42
    assert data["incident"]["top_posts"][0]["text"] == HOSTILE  # JSON carries data verbatim; receivers escape


def test_email_goes_through_smtp(sessions, clock, hook, mailbox) -> None:
    box, port = mailbox
    settings = _settings(hook, port)
    senders = build_senders(settings)
    incident_id = open_incident(sessions, settings, clock.now(), posts=[("退款太慢了 😡🇨🇳", "微博用户", 45_000)])
    drain(sessions, senders, clock)
    add_event(sessions, settings, incident_id, "severity_changed", clock.advance(timedelta(minutes=1)),
              data={"from": 2, "to": 3}, severity=3)
    drain(sessions, senders, clock)
    assert len(box.envelopes) == 2
    first = email.message_from_bytes(box.envelopes[0].content, policy=email.policy.default)
    assert box.envelopes[0].rcpt_tos == ["oncall@acme.example"]
    assert first["Subject"] == "SEV-2 acme: negative spike" and first["From"] == "flarewatch@acme.example"
    text = first.get_content()
    assert "42 negative posts in 15 minutes, usually about 3" in text and "退款太慢了 😡🇨🇳" in text
    second = email.message_from_bytes(box.envelopes[1].content, policy=email.policy.default)
    assert second["Subject"].startswith("Severity up: SEV-2 to SEV-3")
    assert first["Message-ID"] != second["Message-ID"]


def test_settings_reject_unknown_references_and_keys() -> None:
    with pytest.raises(ValueError, match="webhook 'nope'"):
        AlertSettings.model_validate({"escalation": [{"levels": [{"webhooks": ["nope"]}]}]})
    with pytest.raises(ValueError, match="not a Slack user group id"):
        AlertSettings.model_validate({"escalation": [{"levels": [{"mention": ["<!channel>"]}]}]})
    with pytest.raises(ValueError, match="the first level needs channels"):
        AlertSettings.model_validate({"escalation": [{"levels": [{"mention": ["S0ONCALL1"]}]}]})
    with pytest.raises(ValueError, match="Extra inputs"):
        AlertSettings.model_validate({"slack_channel": "#x"})
    assert AlertSettings.model_validate({"slack_bot_token": ""}).slack_enabled is False
