"""Mastodon hashtag timelines on several instances and token search, against recorded responses."""
from __future__ import annotations

import copy
import json

from connectors.http import HttpError
from connectors.mastodon import normalise_status, tag_for
from tests.connectorkit import FAST, FIXTURES, drain, drain_until_error, load, make, posts_of
from tests.httpreplay import Reply, fixture_reply, instant_sleep, replay_server  # noqa: F401

M = FIXTURES / "mastodon"
TAG = "/api/v1/timelines/tag/rstats"


def connector(server, *prefixes: str, **params):
    instances = [server.url + p for p in (prefixes or ("",))]
    return make("mastodon", ["rstats"], instances=instances, **FAST, **params)


async def test_first_poll_reads_one_page_and_sets_the_cursor(replay_server):
    replay_server.route(TAG, fixture_reply(M / "timeline_tag_rstats_mastodon_social_anonymous_2025.json"))
    pages = await drain(connector(replay_server))
    assert len(pages) == 1 and len(pages[0].posts) == 5
    assert json.loads(pages[0].cursor) == {f"{replay_server.url}|tag:rstats": "114870142396314555"}
    assert replay_server.requests[0].param("min_id") is None and replay_server.requests[0].param("limit") == "40"
    first = pages[0].posts[0]
    assert first.external_id == "https://rstats.me/users/simonpcouch/statuses/114870142137562212"  # global uri
    assert "<" not in first.text and "https://www.simonpcouch.com/blog/2025-07-17-claude-code-2/" in first.text
    assert "#rstats" in first.text and first.author == "simonpcouch@rstats.me" and first.author_followers == 656


async def test_resume_pages_forward_with_min_id_until_empty(replay_server):
    key = f"{replay_server.url}|tag:rstats"
    replay_server.route(TAG, fixture_reply(M / "timeline_tag_page1_localhost_2026.json"),
                        when=lambda r: r.param("min_id") == "114870142396314555")
    replay_server.route(TAG, fixture_reply(M / "timeline_tag_last_page_empty_localhost_2026.json"))
    pages = await drain(connector(replay_server), json.dumps({key: "114870142396314555"}))
    assert [len(p.posts) for p in pages] == [3, 0]
    assert [r.param("min_id") for r in replay_server.requests] == ["114870142396314555", "117020581413876942"]
    assert all(json.loads(p.cursor)[key] == "117020581413876942" for p in pages)  # each page moves it forward


async def test_page_budget_bounds_a_run(replay_server):
    key = f"{replay_server.url}|tag:rstats"
    replay_server.route(TAG, fixture_reply(M / "timeline_tag_page1_localhost_2026.json"))  # never runs dry
    pages = await drain(connector(replay_server, max_pages=3), json.dumps({key: "1"}))
    assert len(pages) == 3 and len(replay_server.requests) == 3


async def test_one_failing_instance_does_not_stop_the_other(replay_server, instant_sleep):
    replay_server.route("/down" + TAG, Reply(503, "<html>maintenance</html>", {"Content-Type": "text/html"}))
    replay_server.route("/up" + TAG, fixture_reply(M / "timeline_tag_single_localhost_2026.json"))
    pages, error = await drain_until_error(connector(replay_server, "/down", "/up"))
    assert len(posts_of(pages)) == 1 and isinstance(error, HttpError) and "503" in str(error)
    assert list(json.loads(pages[0].cursor)) == [f"{replay_server.url}/up|tag:rstats"]  # the failed one kept none


async def test_search_with_token(replay_server):
    replay_server.route(TAG, fixture_reply(M / "timeline_tag_single_localhost_2026.json"))
    replay_server.route("/api/v2/search", fixture_reply(M / "search_v2_mastodon_social_2026.json"))
    pages = await drain(connector(replay_server, access_tokens={replay_server.url: "tok"}))
    assert len(posts_of(pages)) == 3
    search = replay_server.requests_to("/api/v2/search")[0]
    assert search.headers["authorization"] == "Bearer tok" and search.param("type") == "statuses"
    assert search.param("q") == "rstats"
    assert set(json.loads(pages[-1].cursor)) == {f"{replay_server.url}|tag:rstats", f"{replay_server.url}|search:rstats"}


def test_status_normaliser_rules():
    status = load("mastodon", "status_mastodon_social_edited_2023.json")
    post = normalise_status("s", status)
    assert post is not None and post.created_at.tzinfo is not None and "<" not in post.text
    boost = copy.deepcopy(status)
    boost["reblog"] = copy.deepcopy(status)
    assert normalise_status("s", boost) is None
    private = dict(status, visibility="private")
    assert normalise_status("s", private) is None
    warned = dict(status, spoiler_text="CW: outage", content="<p>acme &amp; co are down</p>")
    assert normalise_status("s", warned).text == "CW: outage\nacme & co are down"


def test_tag_for_terms():
    assert tag_for("Acme Corp") == "acmecorp" and tag_for("#Acme") == "acme" and tag_for("艾克米") == "艾克米"
    assert tag_for("!!") is None
