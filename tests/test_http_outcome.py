"""The one HTTP status classifier and Retry-After parser that connectors and senders share."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest

from monitor.core.http_outcome import Outcome, classify, retry_after

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("status, outcome", [
    (200, Outcome.OK), (201, Outcome.OK), (204, Outcome.OK),
    (429, Outcome.RATE_LIMITED),
    (408, Outcome.TRANSIENT), (500, Outcome.TRANSIENT), (502, Outcome.TRANSIENT), (503, Outcome.TRANSIENT),
    (401, Outcome.AUTH_FAILED), (403, Outcome.AUTH_FAILED),
    (301, Outcome.REFUSED), (400, Outcome.REFUSED), (404, Outcome.REFUSED), (410, Outcome.REFUSED),
    (418, Outcome.REFUSED), (432, Outcome.REFUSED),
])
def test_status_table(status, outcome):
    assert classify(status) is outcome
    assert outcome.retryable == (outcome in (Outcome.RATE_LIMITED, Outcome.TRANSIENT))


@pytest.mark.parametrize("headers, wait", [
    ({"Retry-After": "12"}, 12),
    ({"retry-after": " 1.5 "}, 1.5),
    ({"Retry-After": "-3"}, 0),
    ({"Retry-After": format_datetime(NOW + timedelta(seconds=7), usegmt=True)}, 7),  # HTTP date
    ({"Retry-After": format_datetime(NOW - timedelta(hours=1), usegmt=True)}, 0),  # a date in the past
    ({"Retry-After": "soon"}, None),
    ({"Retry-After": "soon", "x-ratelimit-reset": "9"}, 9),  # unreadable Retry-After: the reset header
    ({"x-ratelimit-reset": "15"}, 15),  # Reddit: seconds from now
    ({"ratelimit-reset": str(int(NOW.timestamp()) + 40)}, 40),  # Bluesky: epoch
    ({"x-rate-limit-reset": str(int(NOW.timestamp()) + 5)}, 5),  # X: epoch
    ({"X-RateLimit-Reset": (NOW + timedelta(seconds=3)).isoformat().replace("+00:00", "Z")}, 3),  # Mastodon
    ({"x-ratelimit-reset": "2020-01-01T00:00:00Z"}, 0),
    ({"Retry-After": ["20"]}, 20),  # slack_sdk gives lists
    ({}, None),
    (None, None),
])
def test_retry_after_table(headers, wait):
    assert retry_after(headers, NOW.timestamp()) == (None if wait is None else pytest.approx(wait))


def test_retry_after_reads_httpx_headers_case_insensitively():
    assert retry_after(httpx.Headers({"RETRY-AFTER": "4"}), NOW.timestamp()) == 4
