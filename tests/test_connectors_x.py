"""X API v2 recent search: expansions, since_id resume with next_token paging, usage cap, partial errors."""
from __future__ import annotations

from connectors.http import RateLimited
from tests.connectorkit import FAST, FIXTURES, drain, drain_until_error, load, make, posts_of
from tests.httpreplay import Reply, fixture_reply, instant_sleep, replay_server  # noqa: F401

PATH = "/2/tweets/search/recent"


def connector(server, terms=("brexit", "peoples vote"), **params):
    return make("x", list(terms), base_url=server.url, bearer_token="T0K", **FAST, **params)


async def test_first_poll_with_expansions(replay_server):
    body = load("x", "search_recent_brexit_expansions_2021.json")
    replay_server.route(PATH, Reply(200, body))
    pages = await drain(connector(replay_server))
    assert len(pages) == 1 and pages[0].cursor == body["meta"]["newest_id"]
    sent = replay_server.requests[0]
    assert sent.headers["authorization"] == "Bearer T0K"
    assert sent.param("query") == '(brexit OR "peoples vote") -is:retweet' and sent.param("since_id") is None
    assert "public_metrics" in sent.param("tweet.fields") and sent.param("expansions") == "author_id"
    post = next(p for p in pages[0].posts if p.external_id == "1440716895355764743")
    assert post.author == "WarmongerHodges" and post.author_followers == 34920
    assert post.url == "https://x.com/WarmongerHodges/status/1440716895355764743" and post.lang == "en"
    retweets = [t for t in body["data"] if any(r["type"] == "retweeted" for r in t.get("referenced_tweets", []))]
    assert len(pages[0].posts) == len(body["data"]) - len(retweets)


async def test_resume_follows_next_token_and_keeps_the_newest_id(replay_server):
    first = load("x", "search_recent_kpop_partial_errors_2021.json")  # 200 with errors[] alongside data
    replay_server.route(PATH, fixture_reply(FIXTURES / "x" / "search_recent_minimal_tweepy_2022.json"),
                        when=lambda r: r.param("next_token") == first["meta"]["next_token"])
    replay_server.route(PATH, Reply(200, first))
    pages = await drain(connector(replay_server, max_pages=2), "1440000000000000000")
    assert pages[0].cursor is None and pages[0].posts == [] and pages[0].errors == 0  # 3 retweets: skipped
    assert pages[1].cursor == first["meta"]["newest_id"]
    assert pages[1].errors == 10 and pages[1].posts == []  # default-field tweets lack created_at
    assert {r.param("since_id") for r in replay_server.requests} == {"1440000000000000000"}


async def test_empty_result_keeps_the_cursor(replay_server):
    replay_server.route(PATH, Reply(200, {"meta": {"result_count": 0}}))
    pages = await drain(connector(replay_server), "1440000000000000000")
    assert pages[0].posts == [] and pages[0].cursor == "1440000000000000000"


async def test_usage_cap_stops_without_retrying(replay_server, instant_sleep):
    replay_server.route(PATH, fixture_reply(FIXTURES / "x" / "error_usage_cap_v2_observed.json", status=429))
    pages, error = await drain_until_error(connector(replay_server))
    assert pages == [] and isinstance(error, RateLimited) and "UsageCapExceeded" in str(error)
    assert len(replay_server.requests) == 1 and instant_sleep == []


async def test_since_id_older_than_the_search_window_restarts_from_now(replay_server):
    # constructed in the documented 400 invalid-request shape (FACTS.md); no recording exists
    problem = {"errors": [{"parameters": {"since_id": ["1"]}, "message": "Invalid 'since_id':'1'. 'since_id' must "
                           "be a tweet id created after 2026-11-16T00:00Z."}],
               "title": "Invalid Request", "detail": "One or more parameters to your request was invalid.",
               "type": "https://api.twitter.com/2/problems/invalid-request"}
    replay_server.route(PATH, Reply(400, problem), when=lambda r: r.param("since_id") is not None)
    body = load("x", "search_recent_brexit_expansions_2021.json")
    replay_server.route(PATH, Reply(200, body))
    pages = await drain(connector(replay_server), "1")
    assert pages[-1].cursor == body["meta"]["newest_id"] and posts_of(pages)
    assert [r.param("since_id") for r in replay_server.requests] == ["1", None]
