"""The contract every HTTP-polling connector keeps, run against each one over a real local server.

One table of cases (APScheduler's data-store suite is the model): each case says how to build the
connector against `ReplayServer`, which path it reads and what a good answer looks like. Every test
below runs for every case, so a new connector gets the whole contract by adding one row:

- a malformed page (HTML error page, wrong envelope) fails the run and moves no cursor;
- 429 with a long Retry-After ends the run as `RateLimited` carrying the wait, without sleeping;
- 429 with a short Retry-After, and a 5xx, are waited out and the run recovers;
- 401 and 403 are `AuthFailed`, never retried as if transient;
- the cursor is text that survives a JSON round trip (how it is stored) and a later run resumes from it.

Connector-specific behaviour (paging rules, normalisers, login flows) stays in each connector's file.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

import connectors.bluesky
import connectors.reddit
from connectors.http import AuthFailed, MalformedPayload, RateLimited
from connectors.registry import CONNECTORS
from monitor.core.posts import FetchedPost
from tests.connectorkit import FAST, FIXTURES, drain, drain_until_error, load, make, posts_of
from tests.httpreplay import Recorded, Reply, ReplayServer, fixture_reply, instant_sleep, replay_server  # noqa: F401


@dataclass(frozen=True)
class Case:
    kind: str
    path: str  # the page the connector reads
    good: Callable[[], Reply]  # an answer with at least one on-topic post
    build: Callable[[ReplayServer], Any]
    # Did the second run (given the first run's cursor) resume? Sees its requests and its posts.
    resumed: Callable[[list[Recorded], list[FetchedPost]], bool]


def _bluesky(server: ReplayServer) -> Any:
    server.route("/xrpc/com.atproto.server.createSession",
                 Reply(200, {"accessJwt": "A1", "refreshJwt": "R1", "did": "did:plc:me", "handle": "me"}),
                 method="POST")
    return make("bluesky", ["merci"], base_url=server.url, identifier="me.bsky.social", app_password="pw", **FAST)


def _bluesky_page() -> Reply:
    thread = load("bluesky", "getPostThread_fr_2024.json")["thread"]
    return Reply(200, {"posts": [thread["post"]] + [r["post"] for r in thread["replies"][:2] if "post" in r]})


def _reddit(server: ReplayServer) -> Any:
    server.route("/api/v1/access_token", fixture_reply(FIXTURES / "reddit" / "oauth_access_token_response_2026.json"),
                 method="POST")
    return make("reddit", ["praw"], client_id="app", client_secret="secret", oauth_url=server.url,
                token_url=server.url + "/api/v1/access_token", **FAST)


def _weibo_page() -> Reply:
    cards = load("weibo", "getIndex_container_timeline_mblog_cards_2019.json")["data"]["cards"]
    return Reply(200, {"ok": 1, "data": {"cardlistInfo": {"page": None}, "cards": cards[:2]}})


def _param(name: str) -> Callable[[list[Recorded], list[FetchedPost]], bool]:
    return lambda requests, posts: all(r.param(name) for r in requests)


CASES = [
    Case("bluesky", "/xrpc/app.bsky.feed.searchPosts", _bluesky_page, _bluesky, _param("since")),
    Case("hackernews", "/api/v1/search_by_date",
         lambda: Reply(200, load("hackernews", "search_by_date_comments_nodejs_2020.json")),
         lambda s: make("hackernews", ["nodejs"], base_url=s.url + "/api/v1", **FAST), _param("numericFilters")),
    Case("mastodon", "/api/v1/timelines/tag/rstats",
         lambda: fixture_reply(FIXTURES / "mastodon" / "timeline_tag_single_localhost_2026.json"),
         lambda s: make("mastodon", ["rstats"], instances=[s.url], **FAST), _param("min_id")),
    Case("reddit", "/search", lambda: fixture_reply(FIXTURES / "reddit" / "search_listing_t3_2020.json"),
         _reddit, _param("before")),
    Case("rss", "/feed", lambda: fixture_reply(FIXTURES / "rss" / "news_rss2_huffpost_canada_2017.xml"),
         lambda s: make("rss", ["hijab"], urls=[s.url + "/feed"], **FAST),
         lambda requests, posts: posts == []),  # every entry already seen
    Case("weibo", "/api/container/getIndex", _weibo_page,
         lambda s: make("weibo", ["迪丽热巴"], base_url=s.url, **FAST),
         lambda requests, posts: posts == []),  # stops at the posts it has seen
    Case("x", "/2/tweets/search/recent", lambda: Reply(200, load("x", "search_recent_brexit_expansions_2021.json")),
         lambda s: make("x", ["brexit"], base_url=s.url, bearer_token="T0K", **FAST), _param("since_id")),
]

# Connectors that do not poll an HTTP API; their own tests cover their failures.
NOT_HTTP_POLLING = {
    "jetstream": "a websocket stream (tests/test_connectors_bluesky.py)",
    "jsonl": "reads a local file (tests/test_connectors_push_replay.py)",
    "webhook": "receives pushes; nothing to poll (tests/test_connectors_push_replay.py)",
}


@pytest.fixture(autouse=True)
def fresh_logins(monkeypatch: pytest.MonkeyPatch) -> None:
    """Logins and tokens are cached per process; each test starts logged out."""
    monkeypatch.setattr(connectors.bluesky, "_SESSIONS", {})
    monkeypatch.setattr(connectors.bluesky, "_PROFILES", {})
    monkeypatch.setattr(connectors.bluesky, "_LOGIN_FAILED", {})
    monkeypatch.setattr(connectors.reddit, "_TOKENS", {})


def each(test: Callable[..., Any]) -> Any:
    return pytest.mark.parametrize("case", CASES, ids=[c.kind for c in CASES])(test)


def test_every_connector_is_in_the_contract() -> None:
    assert {c.kind for c in CASES} | set(NOT_HTTP_POLLING) == set(CONNECTORS)
    assert not {c.kind for c in CASES} & set(NOT_HTTP_POLLING)


async def _cursor_of_a_good_run(case: Case, server: ReplayServer) -> str:
    server.route(case.path, case.good())
    pages = await drain(case.build(server))
    assert posts_of(pages), "the good answer must hold a post"
    cursors = [p.cursor for p in pages if p.cursor is not None]
    assert cursors, "a run that stored posts must move the cursor"
    return cursors[-1]


@each
@pytest.mark.parametrize("body", [
    pytest.param(Reply(200, "<html><body>502 Bad Gateway</body></html>", {"Content-Type": "text/html"}), id="html"),
    pytest.param(Reply(200, b'{"truncated": ', {"Content-Type": "application/json"}), id="truncated"),
])
async def test_a_malformed_page_fails_the_run_and_keeps_the_cursor(case, body, replay_server, instant_sleep):
    replay_server.route(case.path, body)
    pages, error = await drain_until_error(case.build(replay_server), None)
    assert isinstance(error, MalformedPayload)
    assert [p.cursor for p in pages if p.cursor is not None] == []


@each
async def test_a_long_retry_after_ends_the_run_as_rate_limited(case, replay_server, instant_sleep):
    replay_server.route(case.path, Reply(429, {"error": "Too many requests"}, {"Retry-After": "3600"}))
    pages, error = await drain_until_error(case.build(replay_server))
    assert isinstance(error, RateLimited)
    assert error.wait_seconds == pytest.approx(3600, abs=1)
    assert instant_sleep == []  # longer than max_wait_seconds: not slept through
    assert len(replay_server.requests_to(case.path)) == 1
    assert [p.cursor for p in pages if p.cursor is not None] == []


@each
@pytest.mark.parametrize("trouble", [
    pytest.param(Reply(429, {"error": "Too many requests"}, {"Retry-After": "2"}), id="429"),
    pytest.param(Reply(503, "<html>maintenance</html>", {"Content-Type": "text/html"}), id="503"),
    pytest.param(Reply(500, "oops"), id="500"),
])
async def test_a_transient_failure_is_waited_out(case, trouble, replay_server, instant_sleep):
    replay_server.route(case.path, trouble, case.good())
    pages = await drain(case.build(replay_server))
    assert posts_of(pages)
    assert len(instant_sleep) == 1
    if trouble.status == 429:
        assert 2 <= instant_sleep[0] < 2.1  # as long as the server asked


@each
@pytest.mark.parametrize("status", [401, 403])
async def test_bad_credentials_are_an_auth_failure_not_retried(case, status, replay_server, instant_sleep):
    replay_server.route(case.path, Reply(status, {"error": "Unauthorized"}))
    pages, error = await drain_until_error(case.build(replay_server))
    assert isinstance(error, AuthFailed) and error.status == status
    assert instant_sleep == []  # not retried as if transient
    assert len(replay_server.requests_to(case.path)) <= 2  # one renewal of a token at most
    assert pages == []


@each
async def test_the_cursor_survives_a_json_round_trip_and_resumes(case, replay_server, instant_sleep):
    cursor = await _cursor_of_a_good_run(case, replay_server)
    assert isinstance(cursor, str)
    stored = json.dumps(json.loads(cursor))  # how a JSON column or an export would write it back
    assert json.loads(stored) == json.loads(cursor)
    before = len(replay_server.requests_to(case.path))
    pages, error = await drain_until_error(case.build(replay_server), stored)
    assert error is None
    assert case.resumed(replay_server.requests_to(case.path)[before:], posts_of(pages))
