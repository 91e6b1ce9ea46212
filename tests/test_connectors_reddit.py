"""Reddit search and subreddit comments, OAuth and logged-out, against recorded listings."""
from __future__ import annotations

import base64
import json

import pytest

import connectors.reddit
from connectors.reddit import normalise_thing
from tests.connectorkit import FAST, FIXTURES, drain, load, make, posts_of
from tests.httpreplay import Reply, fixture_reply, instant_sleep, replay_server  # noqa: F401

R = FIXTURES / "reddit"
TOKEN = "/api/v1/access_token"
EMPTY = {"kind": "Listing", "data": {"after": None, "before": None, "dist": 0, "children": []}}


@pytest.fixture(autouse=True)
def fresh_tokens(monkeypatch):
    monkeypatch.setattr(connectors.reddit, "_TOKENS", {})


def oauth(server, terms=("praw",), **params):
    server.route(TOKEN, fixture_reply(R / "oauth_access_token_response_2026.json"), method="POST")
    return make("reddit", list(terms), client_id="app", client_secret="secret", oauth_url=server.url,
                token_url=server.url + TOKEN, **FAST, **params)


async def test_oauth_search_first_poll(replay_server):
    replay_server.route("/search", fixture_reply(R / "search_listing_t3_2020.json"))
    pages = await drain(oauth(replay_server, terms=["praw", "reddit api"]))
    assert len(pages) == 1 and len(pages[0].posts) == 5
    assert json.loads(pages[0].cursor) == {"search": {"name": "t3_b6b9uf", "created": 1553728251.0}}
    sent = replay_server.requests_to("/search")[0]
    assert sent.headers["authorization"] == "bearer <ACCESS_TOKEN>"
    assert sent.param("q") == 'praw OR "reddit api"' and sent.param("sort") == "new" and sent.param("raw_json") == "1"
    token_request = replay_server.requests_to(TOKEN)[0]
    assert token_request.headers["authorization"] == "Basic " + base64.b64encode(b"app:secret").decode()
    assert token_request.body == b"grant_type=client_credentials"
    post = pages[0].posts[0]
    assert post.url.startswith("https://www.reddit.com/r/learnpython/comments/6ganxe/")
    assert post.score == 3 and post.replies == 24 and post.created_at.year == 2017


async def test_comments_resume_with_before_until_caught_up(replay_server):
    replay_server.route("/r/askreddit/comments", fixture_reply(R / "subreddit_comments_listing_t1_2021_before_page.json"),
                        when=lambda r: r.param("before") == "t1_hjlzwfl")
    replay_server.route("/r/askreddit/comments", Reply(200, EMPTY), when=lambda r: r.param("before") == "t1_hjlzwgw")
    replay_server.route("/r/askreddit/comments", fixture_reply(R / "subreddit_comments_listing_t1_2021.json"))
    replay_server.route("/search", Reply(200, EMPTY))
    state = {"comments:askreddit": {"name": "t1_hjlzwfl", "created": 1636241137.0}}
    pages = await drain(oauth(replay_server, terms=[], comment_subreddits=["askreddit"]), json.dumps(state))
    assert [len(p.posts) for p in pages] == [3, 0]
    assert json.loads(pages[0].cursor)["comments:askreddit"] == {"name": "t1_hjlzwgw", "created": 1636241138.0}
    # the empty `before` page triggers one by-time check of page 1, which finds nothing newer
    assert [r.param("before") for r in replay_server.requests_to("/r/askreddit/comments")] == [
        "t1_hjlzwfl", "t1_hjlzwgw", None]


async def test_deleted_anchor_falls_back_to_time(replay_server):
    replay_server.route("/search", Reply(200, EMPTY), when=lambda r: r.param("before") is not None)
    replay_server.route("/search", fixture_reply(R / "hot_listing_t3_2026.json"))
    state = {"search": {"name": "t3_gone", "created": 1776105848.0}}
    pages = await drain(oauth(replay_server), json.dumps(state))
    assert sorted(p.external_id for p in posts_of(pages)) == ["t3_1skl1i1", "t3_1sklidt"]  # newer than the anchor
    assert json.loads(pages[0].cursor)["search"]["name"] == "t3_1sklidt"


async def test_logged_out_reads_the_public_json(replay_server):
    replay_server.route("/search.json", fixture_reply(R / "search_listing_t3_2020.json"))
    pages = await drain(make("reddit", ["praw"], public_url=replay_server.url, **FAST))
    assert len(posts_of(pages)) == 5
    assert "authorization" not in replay_server.requests_to("/search.json")[-1].headers


async def test_expired_token_is_renewed_once(replay_server):
    replay_server.route("/search", Reply(401, {"message": "Unauthorized", "error": 401}),
                        fixture_reply(R / "search_listing_t3_2020.json"))
    pages = await drain(oauth(replay_server))
    assert len(posts_of(pages)) == 5 and len(replay_server.requests_to(TOKEN)) == 2


def test_deleted_and_removed_items_are_skipped():
    deleted = load("reddit", "api_info_deleted_comment_2016.json")["data"]["children"][0]
    assert normalise_thing("s", deleted) is None
    post = load("reddit", "hot_listing_t3_2026.json")["data"]["children"][0]
    removed = {"kind": "t3", "data": dict(post["data"], removed_by_category="moderator")}
    assert normalise_thing("s", removed) is None
    assert normalise_thing("s", post).external_id == "t3_1skjxta"
