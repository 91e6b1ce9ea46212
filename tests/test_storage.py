"""Migrations, the schema they build, and storing fetched posts (both databases)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, inspect, select
from sqlalchemy.exc import IntegrityError

from monitor.core.posts import FetchedPost, Page
from monitor.core.brands import BrandMatcher
from monitor.core.ingest import ensure_source, store_page, store_posts
from monitor.core.storage.db import make_engine, migrate, transaction
from monitor.core.storage.schema import Base, Post, Score

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)


def fetched(n: int, text: str | None = None, **extra) -> FetchedPost:
    return FetchedPost(source="acme-hn", external_id=str(n), text=text or f"Acme post number {n}",
                       created_at=T0 + timedelta(minutes=n), author=f"user{n}", **extra)


def test_migrations_build_the_models_schema_and_rerun_cleanly(engine) -> None:
    migrate(engine)  # the fixture already migrated once: a second run must be a no-op
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"schema.py and the migrations disagree: {diff}"
    assert {"posts", "scores", "sources", "incidents", "outbox", "flagged_posts"} <= set(inspect(engine).get_table_names())


def test_sqlite_runs_in_wal_mode(sqlite_url) -> None:
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


def test_times_come_back_aware_utc_and_naive_times_are_refused(sessions) -> None:
    with transaction(sessions) as s:
        store_posts(s, "Acme", None, [fetched(1)], T0)
    with sessions() as s:
        post = s.scalars(select(Post)).one()
        assert post.created_at == T0 + timedelta(minutes=1) and post.created_at.tzinfo is not None
    with pytest.raises(Exception, match="naive datetime"), transaction(sessions) as s:
        store_posts(s, "Acme", None, [fetched(2)], datetime(2026, 1, 1))


def test_re_ingesting_the_same_page_stores_nothing_twice(sessions) -> None:
    page = Page(posts=[fetched(1), fetched(2), fetched(3)], cursor="3")
    for _ in range(2):
        with transaction(sessions) as s:
            source = ensure_source(s, "acme-hn", "Acme", "hackernews")
            result = store_page(s, source, "Acme", None, page, T0)
    assert result.stored == 0 and result.already_seen == 3
    with sessions() as s:
        assert s.scalar(select(func.count(Post.id))) == 3
        assert ensure_source(s, "acme-hn", "Acme", "hackernews").cursor == "3"


def test_an_exact_repost_is_folded_into_the_original_with_its_engagement(sessions) -> None:
    original = fetched(1, "Acme lost my parcel again!", reposts=2, likes=5)
    copy = fetched(2, "  acme LOST my parcel again! https://t.co/x ", reposts=1, likes=3)
    with transaction(sessions) as s:
        result = store_posts(s, "Acme", None, [original, copy], T0)
    assert (result.stored, result.duplicates) == (1, 1)
    with sessions() as s:
        first = s.scalars(select(Post).where(Post.external_id == "1")).one()
        second = s.scalars(select(Post).where(Post.external_id == "2")).one()
        assert second.duplicate_of == first.id
        assert (first.reposts, first.likes) == (2 + 1 + 1, 5 + 3)


def test_posts_that_do_not_mention_the_brand_are_not_stored(sessions) -> None:
    matcher = BrandMatcher(["acme"], exclude=["acme road"])
    posts = [fetched(1, "I love ACME"), fetched(2, "roadrunner"), fetched(3, "stuck on Acme Road again")]
    with transaction(sessions) as s:
        result = store_posts(s, "Acme", matcher, posts, T0)
    assert (result.stored, result.off_topic) == (1, 2)


def test_a_failed_transaction_keeps_neither_posts_nor_cursor(sessions) -> None:
    with transaction(sessions) as s:
        ensure_source(s, "acme-hn", "Acme", "hackernews").cursor = "old"
    with pytest.raises(RuntimeError), transaction(sessions) as s:
        source = ensure_source(s, "acme-hn", "Acme", "hackernews")
        store_page(s, source, "Acme", None, Page(posts=[fetched(1)], cursor="new"), T0)
        raise RuntimeError("crash mid-page")
    with sessions() as s:
        assert s.scalar(select(func.count(Post.id))) == 0
        assert ensure_source(s, "acme-hn", "Acme", "hackernews").cursor == "old"


def test_one_score_per_post_and_model(sessions) -> None:
    with transaction(sessions) as s:
        store_posts(s, "Acme", None, [fetched(1)], T0)
    with transaction(sessions) as s:
        post = s.scalars(select(Post)).one()
        s.add_all([Score(post_id=post.id, model="m@1", label="negative", confidence=0.9, sentiment=-0.8,
                         lang="en", scored_at=T0),
                   Score(post_id=post.id, model="m@2", label="neutral", confidence=0.6, sentiment=0.0,
                         lang="en", scored_at=T0)])
    with pytest.raises(IntegrityError), transaction(sessions) as s:
        s.add(Score(post_id=post.id, model="m@1", label="positive", confidence=0.9, sentiment=0.9,
                    lang="en", scored_at=T0))
