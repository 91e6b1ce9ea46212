"""The shared request helper against a real local server: retries, 429 waits, malformed bodies."""
from __future__ import annotations

import json
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from connectors.http import (
    HttpError, HttpParams, MalformedPayload, NetworkError, RateLimited, read_json, request,
)
from tests.connectorkit import FIXTURES
from tests.httpreplay import Reply, ReplayServer, fixture_reply, instant_sleep, replay_server  # noqa: F401

PARAMS = HttpParams(retries=3, backoff_seconds=0.01, max_backoff_seconds=0.05, max_wait_seconds=30)


async def get(server: ReplayServer, path: str = "/x", params: HttpParams = PARAMS, **kwargs: object) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await request(client, "GET", server.url + path, source="t", params=params, **kwargs)


async def test_429_with_retry_after_seconds_waits_then_succeeds(replay_server, instant_sleep):
    replay_server.route("/x", fixture_reply(FIXTURES / "reddit" / "error_429_html_with_retry_after_2021.html"),
                        Reply(200, {"ok": True}))
    response = await get(replay_server)
    assert await read_json(response) == {"ok": True}
    assert len(replay_server.requests_to("/x")) == 2
    assert len(instant_sleep) == 1 and 4 <= instant_sleep[0] < 4.1  # the recorded retry-after: 4


async def test_429_with_http_date_and_reset_headers(replay_server, instant_sleep, monkeypatch):
    import connectors.http

    now = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    monkeypatch.setattr(connectors.http, "wall_time", lambda: now.timestamp())
    replay_server.route(
        "/x",
        Reply(429, "slow down", {"Retry-After": format_datetime(now + timedelta(seconds=7), usegmt=True)}),
        Reply(429, {"error": "Too many requests"},
              {"X-RateLimit-Reset": (now + timedelta(seconds=3)).isoformat().replace("+00:00", "Z")}),
        Reply(429, {"title": "Too Many Requests"}, {"x-rate-limit-reset": str(int(now.timestamp()) + 5)}),
        Reply(200, {"ok": 1}),
    )
    await get(replay_server)
    assert [round(w) for w in instant_sleep] == [7, 3, 5]


async def test_429_without_headers_backs_off_exponentially(replay_server, instant_sleep):
    replay_server.route("/x", fixture_reply(FIXTURES / "reddit" / "error_429_json_no_retry_after_2021.json"),
                        Reply(200, {}))
    await get(replay_server)
    assert len(instant_sleep) == 1 and instant_sleep[0] <= 0.05 + 0.01


async def test_wait_longer_than_the_limit_gives_up_at_once(replay_server, instant_sleep):
    replay_server.route("/x", Reply(429, {"error": "RateLimitExceeded"}, {"Retry-After": "3600"}))
    with pytest.raises(RateLimited) as caught:
        await get(replay_server)
    assert caught.value.wait_seconds == 3600
    assert len(replay_server.requests) == 1 and instant_sleep == []


async def test_persistent_429_ends_as_rate_limited(replay_server, instant_sleep):
    replay_server.route("/x", Reply(429, {"error": "Too many requests"}, {"Retry-After": "1"}))
    with pytest.raises(RateLimited):
        await get(replay_server)
    assert len(replay_server.requests) == PARAMS.retries + 1


async def test_5xx_then_recovery(replay_server, instant_sleep):
    replay_server.route("/x", Reply(502, "<html>bad gateway</html>", {"Content-Type": "text/html"}),
                        Reply(503, ""), Reply(200, [1, 2]))
    assert await read_json(await get(replay_server)) == [1, 2]
    assert len(replay_server.requests) == 3 and len(instant_sleep) == 2


async def test_5xx_that_persists_is_an_http_error(replay_server, instant_sleep):
    replay_server.route("/x", Reply(500, {"message": "Internal Server Error", "error": 500}))
    with pytest.raises(HttpError) as caught:
        await get(replay_server)
    assert caught.value.status == 500 and len(replay_server.requests) == PARAMS.retries + 1


async def test_4xx_is_not_retried(replay_server, instant_sleep):
    replay_server.route("/x", fixture_reply(FIXTURES / "mastodon" / "error_401_invalid_token.json"))
    with pytest.raises(HttpError) as caught:
        await get(replay_server)
    assert caught.value.status == 401 and "access token is invalid" in str(caught.value)
    assert len(replay_server.requests) == 1


async def test_dropped_connection_is_retried(replay_server, instant_sleep):
    replay_server.route("/x", Reply(drop=True), Reply(200, {"fine": True}))
    assert await read_json(await get(replay_server)) == {"fine": True}


async def test_unreachable_server_is_a_network_error(instant_sleep):
    with ReplayServer() as server:
        url = server.url
    async with httpx.AsyncClient() as client:
        with pytest.raises(NetworkError):
            await request(client, "GET", url + "/x", source="t", params=PARAMS)


async def test_query_and_user_agent_are_sent(replay_server):
    replay_server.route("/x", Reply(200, {}))
    await get(replay_server, query={"q": "acme corp", "limit": 5})
    sent = replay_server.requests[0]
    assert sent.query == {"q": ["acme corp"], "limit": ["5"]}
    assert sent.headers["user-agent"].startswith("flarewatch/")


@pytest.mark.parametrize("body, kind", [
    (b'{"posts": [{"uri": "at://x"', "application/json"),
    (b"<!DOCTYPE html><html><body>Service Unavailable</body></html>", "application/json"),
    (b"", "application/json"),
    (b"  \n<?xml version='1.0'?><error/>", "text/xml"),
])
async def test_malformed_bodies(replay_server, body, kind):
    replay_server.route("/x", Reply(200, body, {"Content-Type": kind}))
    with pytest.raises(MalformedPayload):
        await read_json(await get(replay_server))


async def test_json_labelled_as_html_is_still_json(replay_server):
    replay_server.route("/x", Reply(200, b'{"ok": true}', {"Content-Type": "text/html; charset=utf-8"}))
    assert await read_json(await get(replay_server)) == {"ok": True}


@pytest.mark.parametrize("recorded, headers, now, wait", [
    ("bluesky/error_429_createSession_transcribed_2024.http.json", None, 1726683990.0, 10),  # ratelimit-reset
    ("x/error_429_v2_observed.http.json", {"x-rate-limit-remaining": "0", "x-rate-limit-reset": "1665183229"},
     1665183200.0, 29),  # recorded body, headers as documented
])
async def test_recorded_429s_are_waited_out_as_asked(replay_server, instant_sleep, monkeypatch,
                                                     recorded, headers, now, wait):
    import connectors.http

    monkeypatch.setattr(connectors.http, "wall_time", lambda: now)
    meta = json.loads((FIXTURES / recorded).read_text(encoding="utf-8"))
    replay_server.route("/x", Reply(429, meta["body"], headers or meta["headers"]), Reply(200, {"ok": 1}))
    await get(replay_server)
    assert len(instant_sleep) == 1 and wait <= instant_sleep[0] < wait + 1
