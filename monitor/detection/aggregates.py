"""Per brand, source and minute counts, kept incrementally as posts are scored.

`record` runs in the scoring transaction, so a post is counted exactly when its score is stored.
Detection reads these buckets (a few rows per minute) instead of rescanning posts.

Reach weight of a negative post: 1 + ln(1 + author followers), so every negative post counts at
least 1 and a large audience counts more, but logarithmically (one celebrity does not outweigh a
crowd). Engagement is left out on purpose: it keeps growing after the post is counted (ingest
folds re-posts into the original), so a bucket could never equal a recount; the viral detector
reads live engagement instead, and `visibility` adds it when ranking an incident's posts.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from monitor.core.storage.db import upsert_insert
from monitor.core.storage.schema import Bucket, Post, Score, UTCDateTime

NEGATIVE = "negative"
POSITIVE = "positive"


def floor_minute(when: datetime) -> datetime:
    return when.replace(second=0, microsecond=0)


def reach_weight(followers: int | None) -> float:
    return 1.0 + math.log1p(max(followers or 0, 0))


def visibility(followers: int | None, reposts: int | None, replies: int | None) -> float:
    """Reach weight plus ln(1 + engagement) as it is now: how much a post is being seen."""
    return reach_weight(followers) + math.log1p(max((reposts or 0) + (replies or 0), 0))


@dataclass(frozen=True)
class BucketCounts:
    brand: str
    source: str
    start: datetime
    volume: int
    negative: int
    positive: int
    sentiment_sum: float
    reach_negative: float


class _Counted(Protocol):
    """What counting reads of a post (an ORM `Post` or a row) and of its score."""

    brand: str
    source: str
    created_at: datetime
    author_followers: int | None


class _Label(Protocol):
    """What counting reads of a score (an ORM `Score` or the pipeline's frozen `Verdict`): read-only."""

    @property
    def label(self) -> str | None: ...

    @property
    def sentiment(self) -> float | None: ...


def _increments(post: _Counted, score: _Label) -> dict[str, float | int]:
    negative = score.label == NEGATIVE
    return {
        "volume": 1,
        "negative": 1 if negative else 0,
        "positive": 1 if score.label == POSITIVE else 0,
        "sentiment_sum": float(score.sentiment or 0.0),
        "reach_negative": reach_weight(post.author_followers) if negative else 0.0,
    }


_UPSERTS: dict[str, Any] = {}
_FIELDS = ("volume", "negative", "positive", "sentiment_sum", "reach_negative")


def _upsert(dialect: str) -> Any:
    """One INSERT ... ON CONFLICT DO UPDATE per dialect, built once (building it costs more than running it)."""
    stmt = _UPSERTS.get(dialect)
    if stmt is None:
        if dialect not in ("postgresql", "sqlite"):
            raise RuntimeError(f"aggregates support SQLite and PostgreSQL, not {dialect}")
        insert = upsert_insert(dialect, Bucket).values(
            brand=bindparam("brand"), source=bindparam("source"), start=bindparam("start", type_=UTCDateTime()),
            **{name: bindparam(name) for name in _FIELDS})
        stmt = _UPSERTS[dialect] = insert.on_conflict_do_update(
            index_elements=[Bucket.brand, Bucket.source, Bucket.start],
            set_={name: getattr(Bucket, name) + getattr(insert.excluded, name) for name in _FIELDS},
        )
    return stmt


def record(session: Session, post: Post, score: Score) -> None:
    """Add one scored post (or a counted copy, see `pipeline.pending_copies`) to its (brand, source,
    minute) bucket: one upsert."""
    record_batch(session, [(post, score)])


def record_batch(session: Session, counted: Sequence[tuple[_Counted, _Label]]) -> None:
    """Add a scoring batch to its buckets: increments summed per bucket, then one upsert per bucket.

    The upserts go in key order, so concurrent scorers lock shared buckets in the same order and
    never deadlock.
    """
    totals: dict[tuple[str, str, datetime], dict[str, float | int]] = {}
    for post, score in counted:
        row = totals.setdefault((post.brand, post.source, floor_minute(post.created_at)), dict.fromkeys(_FIELDS, 0))
        for name, value in _increments(post, score).items():
            row[name] += value
    if not totals:
        return
    stmt = _upsert(session.get_bind().dialect.name)
    session.connection().execute(stmt, [
        {"brand": brand, "source": source, "start": start, **values}
        for (brand, source, start), values in sorted(totals.items())
    ])


def recount(session: Session, brand: str | None = None) -> list[BucketCounts]:
    """The buckets recomputed from posts and their scores (one score per post: the first model's;
    counted copies have a score row of their own).

    This is the reference the incremental buckets must equal; it rescans posts, so it is for
    checks and repairs, not for detection.
    """
    first_score = (
        select(Score.post_id, func.min(Score.id).label("score_id")).group_by(Score.post_id).subquery()
    )
    query = (
        select(Post, Score)
        .join(first_score, first_score.c.post_id == Post.id)
        .join(Score, Score.id == first_score.c.score_id)
    )
    if brand is not None:
        query = query.where(Post.brand == brand)
    totals: dict[tuple[str, str, datetime], dict[str, float | int]] = {}
    for post, score in session.execute(query):
        key = (post.brand, post.source, floor_minute(post.created_at))
        row = totals.setdefault(key, dict.fromkeys(("volume", "negative", "positive", "sentiment_sum", "reach_negative"), 0))
        for name, value in _increments(post, score).items():
            row[name] += value
    return [
        BucketCounts(b, s, t, int(v["volume"]), int(v["negative"]), int(v["positive"]),
                     float(v["sentiment_sum"]), float(v["reach_negative"]))
        for (b, s, t), v in sorted(totals.items())
    ]


def stored(session: Session, brand: str | None = None) -> list[BucketCounts]:
    """The buckets as stored, in the same shape and order as `recount`."""
    query = select(Bucket).order_by(Bucket.brand, Bucket.source, Bucket.start)
    if brand is not None:
        query = query.where(Bucket.brand == brand)
    return [
        BucketCounts(b.brand, b.source, b.start, b.volume, b.negative, b.positive, b.sentiment_sum, b.reach_negative)
        for b in session.scalars(query)
    ]


@dataclass(frozen=True)
class MinuteCounts:
    """One minute of a brand, all sources together."""

    start: datetime
    volume: int
    negative: int
    reach_negative: float


_MINUTES = (
    select(Bucket.start, func.sum(Bucket.volume), func.sum(Bucket.negative), func.sum(Bucket.reach_negative))
    .where(Bucket.brand == bindparam("brand"), Bucket.start >= bindparam("since", type_=UTCDateTime()),
           Bucket.start < bindparam("until", type_=UTCDateTime()))
    .group_by(Bucket.start)
    .order_by(Bucket.start)
)


def minutes(session: Session, brand: str, since: datetime, until: datetime) -> list[MinuteCounts]:
    """The brand's minutes with posts in [since, until), summed over sources, oldest first."""
    rows = session.connection().execute(_MINUTES, {"brand": brand, "since": since, "until": until})
    return [MinuteCounts(start, int(v), int(n), float(r or 0.0)) for start, v, n, r in rows]


def first_minute(session: Session, brand: str) -> datetime | None:
    return session.scalar(select(func.min(Bucket.start)).where(Bucket.brand == brand))


def by_source(session: Session, brand: str, since: datetime, until: datetime) -> dict[str, dict[str, int]]:
    """Per-source volume and negatives over [since, until): the breakdown shown with an incident."""
    rows = session.execute(
        select(Bucket.source, func.sum(Bucket.volume), func.sum(Bucket.negative))
        .where(Bucket.brand == brand, Bucket.start >= since, Bucket.start < until)
        .group_by(Bucket.source)
        .order_by(Bucket.source)
    )
    return {source: {"volume": int(v), "negative": int(n)} for source, v, n in rows}
