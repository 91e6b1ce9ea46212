"""What an HTTP answer means for the caller, and how long the server asked us to wait.

Connectors (`connectors.http`) and alert senders (`alerts.slack`, `alerts.webhook`, ...) both ask
the same two questions of a response, so both import this module (prometheus/alertmanager keeps one
`Retrier.Check` for every integration for the same reason):

- `classify(status)`: success, rate limited (429), transient (408, 5xx: try again later), auth
  failed (401, 403: bad credentials, waiting will not help) or refused (any other status).
- `retry_after(headers, now)`: seconds to wait, from `Retry-After` (seconds or an HTTP date) or a
  rate-limit reset header (`x-ratelimit-reset`, `x-rate-limit-reset`, `ratelimit-reset`: epoch
  seconds, seconds from now, or an ISO-8601 time). None when the server said nothing usable;
  each caller picks its own fallback (backoff, a pacing interval).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from enum import StrEnum

RESET_HEADERS = ("x-ratelimit-reset", "x-rate-limit-reset", "ratelimit-reset")
_EPOCH_FROM = 1_000_000_000  # a reset value this large is a unix time, smaller ones are seconds from now


class Outcome(StrEnum):
    OK = "ok"
    RATE_LIMITED = "rate_limited"
    TRANSIENT = "transient"
    AUTH_FAILED = "auth_failed"
    REFUSED = "refused"

    @property
    def retryable(self) -> bool:
        return self in (Outcome.RATE_LIMITED, Outcome.TRANSIENT)


def classify(status: int) -> Outcome:
    """The meaning of an HTTP status for a client that may retry."""
    if 200 <= status < 300:
        return Outcome.OK
    if status == 429:
        return Outcome.RATE_LIMITED
    if status == 408 or status >= 500:
        return Outcome.TRANSIENT
    if status in (401, 403):
        return Outcome.AUTH_FAILED
    return Outcome.REFUSED


def _first(value: object) -> str | None:
    """A header value as text; some clients (slack_sdk) give a list per header."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, Iterable):
        for item in value:
            return _first(item)
    return None


def _seconds_until(when: datetime, now: float) -> float:
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - now)


def retry_after(headers: Mapping[str, object] | None, now: float) -> float | None:
    """Seconds the server asks us to wait (never negative), or None; `now` is unix time."""
    if not headers:
        return None
    lowered = {str(name).lower(): _first(value) for name, value in headers.items()}
    value = lowered.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            return _seconds_until(parsedate_to_datetime(value), now)
        except (TypeError, ValueError, IndexError):
            pass  # unreadable: look at the reset headers
    for name in RESET_HEADERS:
        value = lowered.get(name)
        if not value:
            continue
        try:
            number = float(value)
        except ValueError:
            try:  # Mastodon sends an ISO-8601 time
                return _seconds_until(datetime.fromisoformat(value.replace("Z", "+00:00")), now)
            except ValueError:
                continue
        # Epoch seconds (X, Bluesky) are large; Reddit sends seconds from now.
        return max(0.0, number - now if number > _EPOCH_FROM else number)
    return None
