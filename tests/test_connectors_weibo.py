"""Weibo mobile search: both card shapes, Chinese text and counts, seen-id paging, login walls."""
from __future__ import annotations

import copy
import json
from datetime import datetime, timezone

import pytest

from connectors.http import HttpError, MalformedPayload
from connectors.weibo import normalise_mblog, parse_weibo_time
from tests.connectorkit import FAST, drain, drain_until_error, load, make, posts_of
from tests.httpreplay import Reply, instant_sleep, replay_server  # noqa: F401

PATH = "/api/container/getIndex"


def search_pages() -> tuple[dict, dict]:
    """The recorded cards as two search pages: page 1 mixes card_type 9 and 11 (card_group)."""
    recorded = load("weibo", "getIndex_container_timeline_mblog_cards_2019.json")
    cards = recorded["data"]["cards"]
    topic = {"card_type": 4, "desc": "热门话题"}  # non-post cards are skipped
    page1 = {"ok": 1, "data": {"cardlistInfo": {"page": 2}, "cards": [
        cards[0], {"card_type": 11, "card_group": [topic, cards[1]]}]}}
    page2 = {"ok": 1, "data": {"cardlistInfo": {"page": None}, "cards": cards[2:]}}
    return page1, page2


def connector(server, **params):
    return make("weibo", ["迪丽热巴"], base_url=server.url, **FAST, **params)


async def test_search_pages_and_stops_at_seen_posts(replay_server):
    page1, page2 = search_pages()
    replay_server.route(PATH, Reply(200, page2), when=lambda r: r.param("page") == "2")
    replay_server.route(PATH, Reply(200, page1))
    pages = await drain(connector(replay_server))
    posts = posts_of(pages)
    assert [len(p.posts) for p in pages] == [2, 2]
    first = replay_server.requests[0]
    assert first.param("containerid") == "100103type=61&q=迪丽热巴" and first.param("page") is None
    assert first.headers["referer"].startswith(replay_server.url) and first.headers["mweibo-pwa"] == "1"
    assert posts[0].text.startswith("搬完这块砖，就可以吃好吃的了[偷笑]") and "<" not in posts[0].text
    assert posts[0].author == "Dear-迪丽热巴" and posts[0].author_followers == 63356825
    assert posts[0].url == "https://m.weibo.cn/status/HyTZc60ew" and posts[0].lang == "zh"
    assert posts[0].likes == 348872 and posts[0].reposts == 240492 and posts[0].replies == 95535

    # Next poll: page 1 holds only posts already seen, so paging stops there.
    again = await drain(connector(replay_server), pages[-1].cursor)
    assert posts_of(again) == [] and len(replay_server.requests) == 3


async def test_long_text_is_fetched(replay_server):
    page1, _ = search_pages()
    page1["data"]["cards"][0]["mblog"]["isLongText"] = True
    page1["data"]["cardlistInfo"]["page"] = None
    replay_server.route("/statuses/extend", Reply(200, load("weibo", "statuses_extend_longtext_2019.json")))
    replay_server.route(PATH, Reply(200, page1))
    posts = posts_of(await drain(connector(replay_server)))
    assert posts[0].text.startswith("😄😆😊") and "<br" not in posts[0].text
    assert replay_server.requests_to("/statuses/extend")[0].param("id") == "4383183661430868"


@pytest.mark.parametrize("reply, error", [
    (Reply(200, {"ok": -100, "url": "https://passport.weibo.cn/signin/welcome"}), MalformedPayload),
    (Reply(432, "", {"Content-Type": "text/html"}), HttpError),
    (Reply(418, "I'm a teapot"), HttpError),
])
async def test_blocks_are_errors(replay_server, instant_sleep, reply, error):
    replay_server.route(PATH, reply)
    pages, raised = await drain_until_error(connector(replay_server, cookie="SUB=abc"))
    assert pages == [] and isinstance(raised, error)
    assert replay_server.requests[0].headers["cookie"] == "SUB=abc"


async def test_no_results_is_a_quiet_end(replay_server):
    replay_server.route(PATH, Reply(200, {"ok": 0, "msg": "这里还没有内容"}))
    assert await drain(connector(replay_server)) == []


NOW = datetime(2026, 1, 3, 4, 0, tzinfo=timezone.utc)  # 12:00 in China


@pytest.mark.parametrize("text, expected", [
    ("刚刚", NOW),
    ("5分钟前", datetime(2026, 1, 3, 3, 55, tzinfo=timezone.utc)),
    ("2小时前", datetime(2026, 1, 3, 2, 0, tzinfo=timezone.utc)),
    ("昨天 12:30", datetime(2026, 1, 2, 4, 30, tzinfo=timezone.utc)),
    ("01-02", datetime(2026, 1, 1, 16, 0, tzinfo=timezone.utc)),
    ("12-31", datetime(2025, 12, 30, 16, 0, tzinfo=timezone.utc)),  # read in January: last year
    ("2018-06-14", datetime(2018, 6, 13, 16, 0, tzinfo=timezone.utc)),
    ("Fri Jun 14 20:39:20 +0800 2019", datetime(2019, 6, 14, 12, 39, 20, tzinfo=timezone.utc)),
])
def test_weibo_times(text, expected):
    assert parse_weibo_time(text, NOW) == expected


def test_string_counts_and_reposts():
    mblog = copy.deepcopy(load("weibo", "getIndex_container_timeline_mblog_cards_2019.json")["data"]["cards"][1]["mblog"])
    mblog["user"]["followers_count"] = "6336.5万"
    mblog["reposts_count"] = "100万+"
    post = normalise_mblog("s", mblog, NOW)
    assert post.author_followers == 63_365_000 and post.reposts == 1_000_000
    assert json.dumps(post.raw, ensure_ascii=False)  # raw stays JSON-serialisable
