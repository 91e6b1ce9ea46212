"""Every request body has a size limit enforced while it streams in (issue 17 #3).

Driven at the ASGI level with a body that arrives in chunks (what a chunked upload is), so the test
can count how much of it the app pulled before answering: a limit that is only checked against
Content-Length, or after buffering, would pull all of it.
"""
from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import alerts.interactivity as interactivity
from monitor.core.clock import SimulatedClock
from monitor.web.app import create_app
from monitor.web.ingest_hook import MAX_BODY
from tests.queue_seed import T0, web_config

CHUNK = 64 * 1024
HUGE_CHUNKS = 300 * 1024 * 1024 // CHUNK  # 300 MB if it were all read


def _app(sessions: Any) -> Any:
    config = web_config()
    config.alerts.slack_signing_secret = "s" * 32
    return create_app(config, sessions, SimulatedClock(T0))


async def _post(app: Any, path: str, chunks: int, headers: dict[str, str] | None = None,
                content_length: int | None = None) -> tuple[int, dict[str, Any], int]:
    """POST `chunks` chunks of CHUNK bytes; returns (status, JSON body, chunks the app pulled)."""
    pulled = 0
    messages: list[dict[str, Any]] = []
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    if content_length is not None:
        raw.append((b"content-length", str(content_length).encode()))
    else:
        raw.append((b"transfer-encoding", b"chunked"))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"test"), *raw], "client": ("127.0.0.1", 1), "server": ("test", 80)}

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        if pulled >= chunks:
            await asyncio.sleep(3600)  # like a client that stops sending: must not be waited for
        pulled += 1
        return {"type": "http.request", "body": b"[" * CHUNK, "more_body": pulled < chunks}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await asyncio.wait_for(app(scope, receive, send), 30)
    status = next(m["status"] for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    try:
        return status, json.loads(body or b"{}"), pulled
    except ValueError:  # not JSON (an HTML page, or plain text)
        return status, {"text": body.decode()}, pulled


async def test_slack_actions_stops_reading_an_unsigned_chunked_upload_before_any_signature_work(
        sqlite_engine, monkeypatch) -> None:
    from monitor.core.storage.db import session_factory

    verified: list[int] = []
    real = interactivity.verify_signature
    monkeypatch.setattr(interactivity, "verify_signature", lambda *a, **k: verified.append(1) or real(*a, **k))
    status, body, pulled = await _post(_app(session_factory(sqlite_engine)), "/slack/actions", HUGE_CHUNKS)
    assert status == 413 and body["error"]["code"] == "too_large"
    assert pulled * CHUNK <= interactivity.MAX_BODY + CHUNK  # stopped at the limit, not at 300 MB
    assert verified == []


async def test_ingest_webhook_limits_chunked_bodies_while_streaming(sqlite_engine) -> None:
    from monitor.core.storage.db import session_factory

    status, body, pulled = await _post(_app(session_factory(sqlite_engine)), "/api/ingest/acme-hook", HUGE_CHUNKS,
                                       {"authorization": "Bearer shared-ingest-token"})
    assert status == 413 and body["error"]["code"] == "too_large", body
    assert pulled * CHUNK <= MAX_BODY + CHUNK


@pytest.mark.parametrize("path", ["/slack/actions", "/api/ingest/acme-hook", "/login", "/api/users"])
async def test_a_declared_length_over_the_limit_is_refused_unread(sqlite_engine, path: str) -> None:
    from monitor.core.storage.db import session_factory

    status, body, pulled = await _post(_app(session_factory(sqlite_engine)), path, HUGE_CHUNKS,
                                       {"authorization": "Bearer shared-ingest-token"}, content_length=300 * 2**20)
    assert status == 413 and pulled == 0
    assert body["error"]["code"] == "too_large", body  # the app's one error body, not Starlette's plain text


async def test_a_route_limit_above_the_default_still_holds_for_a_declared_length(sqlite_engine) -> None:
    """The default (1 MiB) checks a declared length only against the route's own limit (the webhook's 5 MiB)."""
    from monitor.core.storage.db import session_factory

    status, body, pulled = await _post(_app(session_factory(sqlite_engine)), "/api/ingest/acme-hook", 32,
                                       {"authorization": "Bearer shared-ingest-token"}, content_length=32 * CHUNK)
    assert status == 400 and pulled == 32, body  # read whole (2 MiB of "["), then refused as bad JSON


async def test_other_routes_have_a_default_limit(sqlite_engine) -> None:
    from monitor.core.storage.db import session_factory

    status, body, pulled = await _post(_app(session_factory(sqlite_engine)), "/login", HUGE_CHUNKS,
                                       {"content-type": "application/x-www-form-urlencoded"})
    assert status == 413 and pulled * CHUNK <= 2 * 2**20
    assert body["error"]["code"] == "too_large", body  # a page's 413 too: every 413 is the one JSON body
