"""RSS/Atom feeds: Google Alerts and a news feed, conditional GET, seen-id filtering, broken feeds."""
from __future__ import annotations

import json
from datetime import datetime, timezone

from connectors.http import MalformedPayload
from connectors.rss import normalise_entry, real_link
from tests.connectorkit import FAST, FIXTURES, drain, drain_until_error, make, posts_of
from tests.httpreplay import Reply, fixture_reply, instant_sleep, replay_server  # noqa: F401

ALERTS = FIXTURES / "rss" / "google_alerts_atom_slack_2019.xml"
NEWS = FIXTURES / "rss" / "news_rss2_huffpost_canada_2017.xml"


async def test_google_alerts_then_304_then_nothing_new(replay_server):
    replay_server.route("/alerts", Reply(304, b""), when=lambda r: r.headers.get("if-none-match") == '"v1"')
    replay_server.route("/alerts", fixture_reply(ALERTS, ETag='"v1"', **{"Content-Type": "application/atom+xml"}))
    url = replay_server.url + "/alerts"
    pages = await drain(make("rss", ["slack"], urls=[url], **FAST))
    posts = pages[0].posts
    assert len(posts) == 20 and pages[0].errors == 0
    assert all("<b>" not in p.text and "&nbsp;" not in p.text for p in posts)
    assert posts[0].url.startswith("https://www.aglobalmarketresearch.com/")  # Google redirect unwrapped
    assert posts[0].author == "www.aglobalmarketresearch.com"
    assert posts[0].created_at == datetime(2019, 7, 10, 11, 53, 37, tzinfo=timezone.utc)
    state = json.loads(pages[0].cursor)[url]
    assert state["etag"] == '"v1"' and len(state["seen"]) == 20

    assert await drain(make("rss", ["slack"], urls=[url], **FAST), pages[0].cursor) == []  # 304
    # Same entries served again without the validator: nothing is new.
    again = await drain(make("rss", ["slack"], urls=[url + "?x"], **FAST),
                        json.dumps({url + "?x": {"seen": state["seen"]}}))
    assert posts_of(again) == []


async def test_broken_feed_does_not_stop_the_good_one(replay_server, instant_sleep):
    replay_server.route("/broken", Reply(200, "<html><body>502 Bad Gateway</body", {"Content-Type": "text/html"}))
    replay_server.route("/news", fixture_reply(NEWS))
    urls = [replay_server.url + "/broken", replay_server.url + "/news"]
    pages, error = await drain_until_error(make("rss", ["hijab"], urls=urls, **FAST))
    assert isinstance(error, MalformedPayload) and "/broken" in str(error)
    news = posts_of(pages)
    assert len(news) == 2 and news[0].author == "Canadian Press" and news[0].lang == "en"
    assert "<img" not in news[0].text and news[0].text.startswith("Winnipeg High School Orders Custom Hijabs")


def test_entry_without_date_or_id():
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    post = normalise_entry("s", {"link": "https://example.com/a", "title": "Acme &amp; <i>co</i>"}, now)
    assert post.created_at == now and post.external_id == "https://example.com/a" and post.text == "Acme & co"
    assert normalise_entry("s", {"title": "   "}, now) is None
    assert real_link("https://www.google.com/url?rct=j&url=javascript:alert(1)") == (
        "https://www.google.com/url?rct=j&url=javascript:alert(1)")  # only http(s) targets are unwrapped
