"""Property tests: every normaliser, inside the item boundary, on any JSON-like input, gives a valid
post, a skip, or a rejection with a reason - never an exception.

Three kinds of input: arbitrary JSON values, recorded items with fields deleted or replaced by
arbitrary values (which reach much deeper into each normaliser than random dicts do), and hostile
ones: extreme dates, nesting thousands deep, huge strings.
"""
from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from typing import Any
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from monitor.core.posts import FetchedPost
from connectors.bluesky import normalise_post_view
from connectors.hackernews import normalise_hit
from connectors.jetstream import normalise_jetstream_event
from connectors.mastodon import normalise_status
from connectors.normal import InvalidItem, as_count, clean_post, html_to_text, parse_time
from connectors.records import post_from_record
from connectors.reddit import normalise_thing
from connectors.rss import normalise_entry
from connectors.weibo import normalise_mblog, parse_weibo_time
from connectors.x import normalise_tweet
from monitor.core.boundary import MAX_DEPTH, Rejected, parse_one
from tests.connectorkit import load

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
    st.sampled_from(["", "2024-11-24T11:10:36.446Z", "刚刚", "06-14", "t3_abc", "<p>x &amp; y</p>", "\x00", "\ud800",
                     "6336.5万", "100万+", "1e308", "-5", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00+14:00"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=5)),
    max_leaves=20,
)
EXTREME_DATES = ["9999-12-31T23:00:00-05:00", "0001-01-01T00:00+01:00", "9999-12-31T23:59:59.999999-23:59",
                 "0001-01-01T00:00:00+23:59", 253402300800, -62135596801, 1e20, "+275760-09-13T00:00:00Z"]


def _deep(depth: int, leaf: Any = "x") -> Any:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


hostile = st.one_of(
    st.sampled_from(EXTREME_DATES),
    st.integers(min_value=MAX_DEPTH - 2, max_value=5_000).map(_deep),
    st.integers(min_value=100_000, max_value=300_000).map(lambda n: "Acme " * (n // 5)),
)


def _templates() -> dict[str, list[Any]]:
    thread = load("bluesky", "getPostThread_fr_2024.json")["thread"]
    return {
        "bluesky": [thread["post"], thread["replies"][0]["post"]],
        "jetstream": load("bluesky", "jetstream_v1_window_posts_only_2026-07-04.jsonl")[:3],
        "mastodon": load("mastodon", "timeline_tag_rstats_mastodon_social_anonymous_2025.json")[:2],
        "reddit": load("reddit", "search_listing_t3_2020.json")["data"]["children"][:1]
        + load("reddit", "subreddit_comments_listing_t1_2021.json")["data"]["children"][:1],
        "hackernews": load("hackernews", "search_by_date_comments_nodejs_2020.json")["hits"][:1]
        + load("hackernews", "search_story_2024_envelope.json")["hits"][:1],
        "rss": [{"id": "tag:x", "title": "<b>Acme</b> news", "link": "https://www.google.com/url?url=https://a.b/c",
                 "summary": "snippet&nbsp;...", "author": "", "published": "2019-07-10T11:53:37Z"}],
        "x": load("x", "search_recent_brexit_expansions_2021.json")["data"][:2],
        "weibo": [c["mblog"] for c in load("weibo", "getIndex_container_timeline_mblog_cards_2019.json")["data"]["cards"][:2]],
        "record": [{"id": "r1-0000001", "source": "replay", "created_at": "2026-01-01T00:00:00Z", "author": "u",
                    "author_followers": 3, "text": "Acme is down", "lang": "en", "likes": 1, "reposts": 0,
                    "replies": 0, "url": "https://example.invalid/p/1"}],
    }


TEMPLATES = _templates()
USERS = {u["id"]: u for u in load("x", "search_recent_brexit_expansions_2021.json")["includes"]["users"]}

NORMALISERS: dict[str, Callable[[Any], FetchedPost | None]] = {
    "bluesky": lambda item: normalise_post_view("src", item),
    "jetstream": lambda item: normalise_jetstream_event("src", item),
    "mastodon": lambda item: normalise_status("src", item),
    "reddit": lambda item: normalise_thing("src", item),
    "hackernews": lambda item: normalise_hit("src", item),
    "rss": lambda item: normalise_entry("src", item, NOW, "en"),
    "x": lambda item: normalise_tweet("src", item, USERS),
    "weibo": lambda item: normalise_mblog("src", item, NOW),
    "record": lambda item: post_from_record("src", item),
}


def check(normalise: Callable[[Any], FetchedPost | None], item: Any) -> FetchedPost | None:
    """What connectors do with each item: normalise and clean it inside the boundary."""
    post = parse_one(lambda raw: None if (found := normalise(raw)) is None else clean_post(found), item)
    if isinstance(post, Rejected):
        assert post.reason and len(post.reason) <= 300  # a clear, bounded reason
        return None
    if post is None:
        return None
    assert isinstance(post, FetchedPost) and post.source == "src"
    assert isinstance(post.external_id, str) and 0 < len(post.external_id) <= 200
    assert isinstance(post.text, str) and post.text.strip()
    assert isinstance(post.author, str) and 0 < len(post.author) <= 300
    assert post.created_at.tzinfo is not None and post.created_at.utcoffset() == timedelta(0)
    for count in (post.likes, post.reposts, post.replies):
        assert isinstance(count, int) and not isinstance(count, bool) and 0 <= count <= 2**62
    assert post.author_followers is None or (isinstance(post.author_followers, int) and post.author_followers >= 0)
    assert post.score is None or (isinstance(post.score, int) and abs(post.score) <= 2**62)
    assert post.lang is None or (isinstance(post.lang, str) and len(post.lang) <= 20)
    assert post.url is None or isinstance(post.url, str)
    for value in (post.external_id, post.text, post.author, post.url or "", post.lang or ""):  # PostgreSQL-safe
        assert "\x00" not in value and not any("\ud800" <= ch <= "\udfff" for ch in value)
        value.encode("utf-8")
    return post


@st.composite
def mutated(draw: st.DrawFn, kind: str) -> Any:
    """A recorded item with a few fields (top level or one level down) deleted or replaced."""
    item = copy.deepcopy(draw(st.sampled_from(TEMPLATES[kind])))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        target = item
        if isinstance(item, dict) and draw(st.booleans()):
            nested = [k for k, v in item.items() if isinstance(v, dict)]
            if nested:
                target = item[draw(st.sampled_from(nested))]
        if not isinstance(target, dict) or not target:
            break
        key = draw(st.sampled_from(sorted(target)))
        choice = draw(st.integers(min_value=0, max_value=4))
        if choice == 0:
            del target[key]
        elif choice == 4:
            target[key] = draw(hostile)
        else:
            target[key] = draw(json_values)
    return item


FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("kind", sorted(NORMALISERS))
@FAST
@given(data=st.data())
def test_normalisers_never_crash(kind: str, data: st.DataObject) -> None:
    check(NORMALISERS[kind], data.draw(json_values))
    check(NORMALISERS[kind], data.draw(mutated(kind)))


@pytest.mark.parametrize("kind", sorted(NORMALISERS))
def test_recorded_items_normalise(kind: str) -> None:
    posts = [check(NORMALISERS[kind], item) for item in TEMPLATES[kind]]
    assert any(p is not None for p in posts)


@FAST
@given(st.text(max_size=200))
def test_html_to_text_is_total_and_tagless(markup: str) -> None:
    text = html_to_text(f"<p>{markup}</p>")
    assert "<p>" not in text and text == text.strip()


@FAST
@given(json_values)
def test_times_and_counts_are_total(value: Any) -> None:
    assert as_count(value) >= 0
    for parse in (lambda v: parse_time(v), lambda v: parse_weibo_time(v, NOW)):
        try:
            when = parse(value)
        except InvalidItem:
            continue
        assert when.utcoffset() == timedelta(0)


def test_html_to_text_examples() -> None:
    assert html_to_text("<p>Acme&#x27;s <b>new</b> plan</p><p>second&nbsp;line<br/>third</p>") == (
        "Acme's new plan\nsecond line\nthird")
    assert html_to_text('<span class="url-icon"><img alt="[偷笑]" src="x.png"></span>好') == "[偷笑]好"
    assert html_to_text("<script>alert(1)</script>visible") == "visible"
    assert html_to_text("a < b and c > d") == "a < b and c > d"


def test_cleaning_keeps_a_post_whole_when_nul_is_all_a_field_had() -> None:
    """Found by the property test: an author of only NUL came out empty after cleaning, a text of only NUL too."""
    entry = {"id": "tag:x", "title": "Acme news", "link": "https://a.b/c", "summary": "s", "author": "\x00",
             "published": "2019-07-10T11:53:37Z"}
    post = check(NORMALISERS["rss"], entry)
    assert post is not None and post.author == "unknown" and post.text
    with pytest.raises(InvalidItem, match="text"):
        clean_post(FetchedPost(source="src", external_id="1", created_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
                               author="a", text="\x00 \x00"))
