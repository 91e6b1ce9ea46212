"""Hacker News (Algolia) search_by_date: first poll, paged resume, entity-laden comments."""
from __future__ import annotations

import json

from connectors.hackernews import normalise_hit
from tests.connectorkit import FAST, drain, drain_until_error, load, make
from tests.httpreplay import Reply, instant_sleep, replay_server  # noqa: F401

PATH = "/api/v1/search_by_date"


def connector(server, terms=("nodejs",), **params):
    return make("hackernews", list(terms), base_url=server.url + "/api/v1", **FAST, **params)


async def test_first_poll_one_page(replay_server):
    body = load("hackernews", "search_by_date_comments_nodejs_2020.json")
    replay_server.route(PATH, Reply(200, body))
    pages = await drain(connector(replay_server))
    assert len(pages) == 1 and len(pages[0].posts) == 2  # nbPages is 50, but a first poll starts from now
    assert json.loads(pages[0].cursor) == {"nodejs": max(h["created_at_i"] for h in body["hits"])}
    sent = replay_server.requests[0]
    assert sent.param("tags") == "(story,comment)" and sent.param("numericFilters") is None
    assert sent.param("hitsPerPage") == "100" and sent.param("query") == "nodejs"
    for post in pages[0].posts:
        assert "&#x27;" not in post.text and "<p>" not in post.text
        assert post.url == f"https://news.ycombinator.com/item?id={post.external_id}"


async def test_resume_pages_through_all_pages(replay_server):
    first = load("hackernews", "search_by_date_comments_nodejs_2020.json") | {"nbPages": 2, "page": 0}
    second = load("hackernews", "search_url_stories_2017.json") | {"nbPages": 2, "page": 1}
    replay_server.route(PATH, Reply(200, second), when=lambda r: r.param("page") == "1")
    replay_server.route(PATH, Reply(200, first))
    pages = await drain(connector(replay_server), json.dumps({"nodejs": 1400000000}))
    assert [len(p.posts) for p in pages] == [2, 4]
    assert pages[0].cursor is None  # newest first: only the last page moves the cursor
    stamps = [h["created_at_i"] for h in first["hits"] + second["hits"]]
    assert json.loads(pages[1].cursor) == {"nodejs": max(stamps)}
    assert {r.param("numericFilters") for r in replay_server.requests} == {"created_at_i>=1400000000"}


async def test_phrase_terms_are_quoted_and_failures_keep_cursor(replay_server, instant_sleep):
    replay_server.route(PATH, Reply(500, "oops"), when=lambda r: r.param("query") == '"acme corp"')
    replay_server.route(PATH, Reply(200, {"hits": "nope"}))
    pages, error = await drain_until_error(connector(replay_server, terms=["acme corp", "acme"]))
    assert pages == [] and "term 'acme corp': HTTP 500" in str(error) and "term 'acme': hits" in str(error)


def test_story_hit_text_and_counts():
    hit = load("hackernews", "search_story_2024_envelope.json")["hits"][0]
    post = normalise_hit("s", hit)
    assert post.text.startswith("Ask HN: How would I visualize URL propagation")
    assert "don't know" in post.text and post.likes == 1 and post.score == 1 and post.replies == 0
