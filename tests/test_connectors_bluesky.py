"""Bluesky searchPosts (logged-in, paged, resumable) and the Jetstream firehose over a real websocket."""
from __future__ import annotations

import asyncio
import copy
import json
import re
from collections.abc import AsyncIterator
from datetime import datetime, timezone

import pytest
from websockets.asyncio.server import serve

import connectors.bluesky
from connectors.bluesky import normalise_post_view
from connectors.http import HttpError, MalformedPayload, NetworkError
from connectors.jetstream import normalise_jetstream_event
from tests.connectorkit import FAST, FIXTURES, drain, drain_until_error, load, make, posts_of
from tests.httpreplay import Reply, instant_sleep, replay_server  # noqa: F401

SEARCH = "/xrpc/app.bsky.feed.searchPosts"
CREATE = "/xrpc/com.atproto.server.createSession"
REFRESH = "/xrpc/com.atproto.server.refreshSession"


def thread_views() -> list[dict]:
    thread = load("bluesky", "getPostThread_fr_2024.json")["thread"]
    return [thread["post"]] + [r["post"] for r in thread["replies"] if "post" in r]


PROFILES = "/xrpc/app.bsky.actor.getProfiles"


@pytest.fixture(autouse=True)
def fresh_sessions(monkeypatch):
    monkeypatch.setattr(connectors.bluesky, "_SESSIONS", {})
    monkeypatch.setattr(connectors.bluesky, "_PROFILES", {})
    monkeypatch.setattr(connectors.bluesky, "_LOGIN_FAILED", {})


def profile_of(did: str, handle: str) -> dict:
    return load("bluesky", "getProfile_2024.json") | {"did": did, "handle": handle}


def logged_in(server, terms=("merci",), **params):
    server.route(CREATE, Reply(200, {"accessJwt": "A1", "refreshJwt": "R1", "did": "did:plc:me", "handle": "me"}),
                 method="POST")
    return make("bluesky", list(terms), base_url=server.url, identifier="me.bsky.social", app_password="pw",
                **FAST, **params)


async def test_search_pages_until_caught_up_and_keeps_the_newest_time(replay_server):
    views = thread_views()
    replay_server.route(SEARCH, Reply(200, {"posts": views[3:6]}), when=lambda r: r.param("cursor") == "3")
    replay_server.route(SEARCH, Reply(200, {"posts": views[:3], "cursor": "3", "hitsTotal": 6}))
    replay_server.route(PROFILES, Reply(200, {"profiles": [profile_of(views[0]["author"]["did"], "redthebot.bsky.social")]}))
    first_poll = await drain(logged_in(replay_server))
    assert len(first_poll) == 1 and len(first_poll[0].posts) == 3  # a first poll starts from now
    pages = await drain(logged_in(replay_server), json.dumps({"merci": "2024-11-24T00:00:00+00:00"}))

    assert [len(p.posts) for p in pages] == [3, 3]
    assert pages[0].cursor is None  # newest first: only the last page may move the cursor
    newest = max(v["indexedAt"] for v in views[:6])
    assert json.loads(pages[-1].cursor) == {"merci": datetime.fromisoformat(newest.replace("Z", "+00:00")).isoformat()}
    first = replay_server.requests_to(SEARCH)[0]
    assert first.param("q") == "merci" and first.param("sort") == "latest" and first.param("since") is None
    assert replay_server.requests_to(SEARCH)[1].param("since") == "2024-11-23T23:58:00+00:00"  # minus overlap
    assert first.headers["authorization"] == "Bearer A1"
    post = pages[0].posts[0]
    assert post.url == "https://bsky.app/profile/redthebot.bsky.social/post/3lboup7r6dk2u"
    assert post.author == "redthebot.bsky.social" and post.lang == "fr" and post.likes == 3 and post.replies == 8
    assert post.author_followers == 185 and pages[0].posts[1].author_followers is None  # only one profile known
    lookups = replay_server.requests_to(PROFILES)
    assert [r.query["actors"] for r in lookups] == [  # each DID is asked once, then cached
        [v["author"]["did"] for v in views[:3]], [v["author"]["did"] for v in views[3:6]]]
    assert lookups[0].headers["authorization"] == "Bearer A1"


async def test_search_resumes_from_the_stored_time_and_logs_in_once(replay_server):
    views = thread_views()
    replay_server.route(SEARCH, Reply(200, {"posts": views[:2]}))
    await drain(logged_in(replay_server))
    cursor = json.dumps({"merci": "2024-11-24T14:03:00.224000+00:00"})
    await drain(logged_in(replay_server, overlap_seconds=60), cursor)

    second = replay_server.requests_to(SEARCH)[1]
    assert second.param("since") == "2024-11-24T14:02:00.224000+00:00"
    assert len(replay_server.requests_to(CREATE)) == 1  # the session is reused, never one login per poll


async def test_expired_token_is_refreshed(replay_server):
    replay_server.route(REFRESH, Reply(200, {"accessJwt": "A2", "refreshJwt": "R2"}), method="POST")
    replay_server.route(SEARCH, Reply(400, {"error": "ExpiredToken", "message": "Token has expired"}),
                        Reply(200, {"posts": thread_views()[:1]}))
    pages = await drain(logged_in(replay_server))
    assert len(posts_of(pages)) == 1
    assert [r.headers["authorization"] for r in replay_server.requests_to(SEARCH)] == ["Bearer A1", "Bearer A2"]
    assert replay_server.requests_to(REFRESH)[0].headers["authorization"] == "Bearer R1"


async def test_wrong_envelope_and_bad_items(replay_server):
    views = thread_views()
    broken = copy.deepcopy(views[1])
    del broken["record"]["text"]
    replay_server.route(SEARCH, Reply(200, {"posts": {"not": "a list"}}), when=lambda r: r.param("q") == "other")
    replay_server.route(SEARCH, Reply(200, {"posts": [views[0], broken, "junk", views[2]]}))
    pages = await drain(logged_in(replay_server))
    assert len(pages[0].posts) == 2 and pages[0].errors == 2

    _, error = await drain_until_error(logged_in(replay_server, terms=("other",)))
    assert isinstance(error, MalformedPayload)


async def test_failed_login_is_not_retried_for_a_while(replay_server):
    replay_server.route(CREATE, Reply(401, {"error": "AuthenticationRequired", "message": "Invalid identifier or password"}),
                        method="POST")
    connector = make("bluesky", ["a", "b", "c"], base_url=replay_server.url, identifier="me", app_password="bad", **FAST)
    _, first = await drain_until_error(connector)
    _, second = await drain_until_error(connector)
    assert isinstance(first, HttpError) and "Invalid identifier" in str(first)
    assert "not retrying" in str(second) and len(replay_server.requests_to(CREATE)) == 1
    assert replay_server.requests_to(SEARCH) == []


def test_post_view_normaliser_details():
    view = thread_views()[0]
    hidden = copy.deepcopy(view)
    hidden["labels"] = [{"val": "!no-unauthenticated", "src": hidden["author"]["did"]}]
    assert normalise_post_view("s", hidden) is None
    future = copy.deepcopy(view)
    future["record"]["createdAt"] = "2031-01-01T00:00:00Z"  # a client clock far ahead of the server
    assert normalise_post_view("s", future).created_at == datetime(2024, 11, 24, 11, 10, 37, 13000, timezone.utc)
    embed = load("bluesky", "getPostThread_embed_2024.json")["thread"]["post"]
    assert embed["record"]["text"] == "" and normalise_post_view("s", embed) is None  # image only: no text
    embed["record"]["text"] = "look at <this> &amp; that"
    assert normalise_post_view("s", embed).text == "look at <this> &amp; that"  # plain text stays as written


# --- Jetstream -------------------------------------------------------------------------------

WINDOW = FIXTURES / "bluesky" / "jetstream_v1_window_posts_only_2026-07-04.jsonl"


class Firehose:
    """A local Jetstream: replays recorded lines to each connection and records its query."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.paths: list[str] = []

    async def handler(self, socket) -> None:
        self.paths.append(socket.request.path)
        for line in self.lines:
            await socket.send(line)
        await socket.close()


@pytest.fixture
async def firehose() -> AsyncIterator[tuple[Firehose, str]]:
    lines = WINDOW.read_text(encoding="utf-8").splitlines()
    hose = Firehose(lines[:5] + ["{not json"] + lines[5:])
    async with serve(hose.handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        yield hose, f"ws://127.0.0.1:{port}/subscribe"


async def test_jetstream_filters_by_terms_pages_and_resumes(firehose):
    hose, url = firehose
    connector = make("jetstream", ["government", "Rushmore"], url=url, page_events=5, max_seconds=5,
                     profiles_url=None)
    pages = await drain(connector)
    events = [json.loads(line) for line in WINDOW.read_text(encoding="utf-8").splitlines()]
    expected = {e["commit"]["rkey"] for e in events if e["kind"] == "commit" and e["commit"].get("record")
                and re.search(r"\b(government|rushmore)\b", e["commit"]["record"]["text"], re.I)}
    assert {p.external_id.rsplit("/", 1)[1] for p in posts_of(pages)} == expected and len(expected) >= 2
    assert sum(p.errors for p in pages) == 1  # the injected bad line
    newest = max(e["time_us"] for e in events)
    assert pages[-1].cursor == str(newest)
    assert len(pages) == 5  # 21 events in pages of 5, the remainder in the last
    assert "wantedCollections=app.bsky.feed.post" in hose.paths[0] and "cursor" not in hose.paths[0]

    await drain(make("jetstream", ["x"], url=url, rewind_seconds=2, max_seconds=5, profiles_url=None),
                pages[-1].cursor)
    assert f"cursor={newest - 2_000_000}" in hose.paths[1]


async def test_jetstream_unreachable_is_a_network_error():
    connector = make("jetstream", ["acme"], url="ws://127.0.0.1:9/subscribe", open_timeout_seconds=2,
                     profiles_url=None)
    pages, error = await drain_until_error(connector)
    assert pages == [] and isinstance(error, NetworkError)


async def test_jetstream_stops_after_max_seconds():
    async def slow(socket) -> None:  # sends nothing until the client leaves
        await socket.wait_closed()

    async with serve(slow, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        connector = make("jetstream", ["acme"], url=f"ws://127.0.0.1:{port}/", max_seconds=0.3, profiles_url=None)
        started = asyncio.get_running_loop().time()
        pages = await drain(connector, "1783175888090631")
        assert asyncio.get_running_loop().time() - started < 5
        assert pages == []  # nothing new: the cursor is left as it was


async def test_jetstream_authors_get_handles_and_followers(firehose, replay_server, instant_sleep):
    hose, url = firehose
    events = [json.loads(line) for line in WINDOW.read_text(encoding="utf-8").splitlines()]
    rushmore = next(e for e in events if "Rushmore" in e.get("commit", {}).get("record", {}).get("text", ""))
    replay_server.route(PROFILES, Reply(200, {"profiles": [profile_of(rushmore["did"], "someone.bsky.social")]}))
    pages = await drain(make("jetstream", ["government", "Rushmore"], url=url, max_seconds=5,
                             profiles_url=replay_server.url))
    by_author = {p.author: p for p in posts_of(pages)}
    known = by_author["someone.bsky.social"]
    assert known.author_followers == 185
    assert known.url == f"https://bsky.app/profile/someone.bsky.social/post/{rushmore['commit']['rkey']}"
    assert all(p.author.startswith("did:") for a, p in by_author.items() if a != "someone.bsky.social")


async def test_profile_lookup_failure_keeps_the_posts(replay_server, instant_sleep):
    replay_server.route(PROFILES, Reply(502, "bad gateway"))
    replay_server.route(SEARCH, Reply(200, {"posts": thread_views()[:2]}))
    pages = await drain(logged_in(replay_server))
    assert len(posts_of(pages)) == 2 and all(p.author_followers is None for p in posts_of(pages))


def test_jetstream_event_kinds():
    events = load("bluesky", "jetstream_v1_golden_10_events.jsonl") + load(
        "bluesky", "jetstream_v1_window_2026-07-04.jsonl")
    posts = [p for p in (normalise_jetstream_event("s", e) for e in events) if p is not None]
    creates = [e for e in events if e.get("kind") == "commit" and e["commit"]["collection"] == "app.bsky.feed.post"
               and e["commit"]["operation"] == "create" and e["commit"]["record"].get("text", "").strip()]
    assert len(posts) == len(creates) > 10
    assert all(p.external_id.startswith("at://did:") and p.created_at.tzinfo is not None for p in posts)
