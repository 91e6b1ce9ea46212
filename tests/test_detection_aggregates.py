"""Minute buckets kept incrementally equal a recount from posts (SQLite and PostgreSQL)."""
from __future__ import annotations

import math
import random
from datetime import timedelta

from monitor.core.posts import FetchedPost
from monitor.detection import aggregates
from monitor.core.ingest import store_posts
from monitor.pipeline import score_pending
from monitor.core.storage.db import transaction
from tests.detection_helpers import T0, KeywordScorer, add_scored_post


def test_buckets_from_the_scoring_stage_equal_a_recount_from_posts(sessions) -> None:
    rng = random.Random(3)
    words = ["broken", "love", "fine"]
    fetched = []
    for i in range(300):
        text = f"Acme {rng.choice(words)} {i % 40}"  # repeated texts: copies, by the same author or not
        fetched.append(FetchedPost(
            source=rng.choice(["src-a", "src-b"]), external_id=str(i), text=text,
            created_at=T0 + timedelta(seconds=rng.randrange(0, 3 * 3600)), author=f"u{i % 80}",
            author_followers=rng.choice([None, 10, 50_000]), reposts=rng.randrange(0, 5), replies=rng.randrange(0, 3)))
    with transaction(sessions) as session:
        store_posts(session, "Acme", None, fetched[:200], T0)
    while score_pending(sessions, KeywordScorer(), T0, limit=64):
        pass
    with transaction(sessions) as session:  # a later page, scored in a later run
        store_posts(session, "Acme", None, fetched[200:], T0)
    while score_pending(sessions, KeywordScorer(), T0, limit=64):
        pass

    with sessions() as session:
        stored = aggregates.stored(session, "Acme")
        recount = aggregates.recount(session, "Acme")
    assert stored and len(stored) == len(recount)
    for got, want in zip(stored, recount, strict=True):
        assert (got.brand, got.source, got.start, got.volume, got.negative, got.positive) == (
            want.brand, want.source, want.start, want.volume, want.negative, want.positive)
        assert math.isclose(got.sentiment_sum, want.sentiment_sum, abs_tol=1e-9)
        assert math.isclose(got.reach_negative, want.reach_negative, rel_tol=1e-9)
        assert got.start.second == 0 and got.start.tzinfo is not None
    first_author: dict[str, str | None] = {}  # a text's original is its first post
    mentions = 0
    for post in fetched:
        if post.text not in first_author:
            first_author[post.text] = post.author
            mentions += 1
        elif post.author != first_author[post.text]:
            mentions += 1  # a copy by someone else counts; one by the original's author does not
    assert len(first_author) < mentions < 300
    assert sum(b.volume for b in stored) == mentions
    assert {b.source for b in stored} == {"src-a", "src-b"}


def test_minutes_sum_the_sources_and_reach_weighs_negative_posts(sessions) -> None:
    with transaction(sessions) as session:
        add_scored_post(session, T0 + timedelta(seconds=5), "negative", source="src-a", followers=0)
        add_scored_post(session, T0 + timedelta(seconds=50), "negative", source="src-b", followers=10_000, reposts=20)
        add_scored_post(session, T0 + timedelta(seconds=59), "positive", source="src-b", followers=10_000)
        add_scored_post(session, T0 + timedelta(minutes=1), "neutral", source="src-a")
    with sessions() as session:
        minutes = aggregates.minutes(session, "Acme", T0, T0 + timedelta(minutes=5))
        by_source = aggregates.by_source(session, "Acme", T0, T0 + timedelta(minutes=5))
    assert [(m.start, m.volume, m.negative) for m in minutes] == [
        (T0, 3, 2), (T0 + timedelta(minutes=1), 1, 0)]
    assert math.isclose(minutes[0].reach_negative, 1.0 + (1 + math.log1p(10_000)))
    assert by_source == {"src-a": {"volume": 2, "negative": 1}, "src-b": {"volume": 2, "negative": 1}}
