"""Alerts as JSON POSTs to a URL of your choice, signed so the receiver can trust them.

Headers on every request:

* `X-Flarewatch-Timestamp`: unix seconds when the request was signed.
* `X-Flarewatch-Signature`: `sha256=` + hex HMAC-SHA256 over `"{timestamp}.{raw body}"` with the
  webhook's `secret` (only when a secret is configured). Receivers recompute it over the raw bytes,
  compare in constant time, and reject old timestamps (we suggest 5 minutes) to stop replays.
* `Idempotency-Key`: the outbox key; the same alert resent after a crash or timeout carries the same
  key, so a receiver drops repeats.

2xx is success; 429 waits for Retry-After (seconds or an HTTP date); 408, 5xx and network errors are
retried; other statuses fail (`monitor.core.http_outcome.classify`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
from pydantic import Field

from alerts.base import AlertJob, Delivered, PermanentError, RetryableError, register_sender
from alerts.summary import event_line, headline, what_moved
from monitor.core.http_outcome import Outcome, classify, retry_after
from monitor.core.settings import OptionalSecret, Strict

if TYPE_CHECKING:
    from alerts.settings import AlertSettings

SIGNATURE_HEADER = "X-Flarewatch-Signature"
TIMESTAMP_HEADER = "X-Flarewatch-Timestamp"
RATE_LIMIT_FALLBACK_SECONDS = 30.0  # a 429 that does not say how long


class WebhookSettings(Strict):
    """[alerts.webhooks.NAME]: one receiver."""

    url: str = Field(pattern=r"^https?://")
    secret: OptionalSecret = Field(default=None, description="HMAC-SHA256 key for the X-Flarewatch-Signature header")
    timeout_seconds: float = Field(default=10, gt=0)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # Many receivers (Slack, Teams, Discord incoming webhooks) carry their token in the URL's path
        # or query: a printed config shows only where it goes.
        for name, value in super().__repr_args__():
            yield name, (_origin(self.url) if name == "url" else value)


def _origin(url: str) -> str:
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.host}{f':{parsed.port}' if parsed.port else ''}/…"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """What a receiver does (also used by our tests)."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def payload(job: AlertJob) -> dict[str, Any]:
    return {
        "type": "flarewatch.alert",
        "id": job.idempotency_key,
        "event": _jsonable(dataclasses.asdict(job.event)) if job.event else None,
        "incident": _jsonable(dataclasses.asdict(job.view)),
        "summary": f"{headline(job.view)}: {what_moved(job.view)}"
                   + (f" ({event_line(job.event)})" if job.event and job.event.kind != "opened" else ""),
        "sent_at": job.now.isoformat(),
    }


@register_sender
class WebhookSender:
    channel: ClassVar[str] = "webhook"
    settings_model: ClassVar[type[Strict] | None] = WebhookSettings

    def __init__(self, webhooks: dict[str, WebhookSettings], client: httpx.Client | None = None) -> None:
        self.webhooks = webhooks
        self.client = client or httpx.Client(follow_redirects=False)

    @classmethod
    def configured(cls, settings: AlertSettings) -> WebhookSender | None:
        return cls(settings.webhooks) if settings.webhooks else None

    def send(self, job: AlertJob) -> Delivered:
        hook = self.webhooks.get(job.target)
        if hook is None:
            raise PermanentError(f"no webhook named {job.target!r} in [alerts.webhooks]")
        body = json.dumps(payload(job), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        timestamp = str(int(job.now.timestamp()))
        headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp,
                   "Idempotency-Key": job.idempotency_key, "User-Agent": "flarewatch-alerts"}
        if hook.secret:
            headers[SIGNATURE_HEADER] = sign(hook.secret.get_secret_value(), timestamp, body)
        try:  # only the status and headers matter: the receiver's body is never read, so never buffered
            with self.client.stream("POST", hook.url, content=body, headers=headers,
                                    timeout=hook.timeout_seconds) as response:
                pass
        except httpx.HTTPError as exc:
            raise RetryableError(f"webhook {job.target} unreachable: {exc!r}") from None
        outcome = classify(response.status_code)
        if outcome is Outcome.OK:
            return Delivered(f"http:{response.status_code}")
        if outcome is Outcome.RATE_LIMITED:
            wait = retry_after(response.headers, job.now.timestamp())
            raise RetryableError(f"webhook {job.target} rate limited",
                                 RATE_LIMIT_FALLBACK_SECONDS if wait is None else max(wait, 1.0))
        if outcome is Outcome.TRANSIENT:
            raise RetryableError(f"webhook {job.target} answered {response.status_code}")
        raise PermanentError(f"webhook {job.target} refused the alert: HTTP {response.status_code}")
