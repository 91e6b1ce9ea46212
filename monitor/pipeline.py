"""The stages between a stored post and an incident: scoring and aggregation, then detection.

Each stage works in bounded batches inside one transaction, so a crash mid-batch leaves the batch
pending and the next run picks it up; nothing is lost and nothing is counted twice.

Pending work is found through `posts.pending` and its partial index, so a tick costs the same
with 10k or 2M stored posts. On PostgreSQL the batch is locked with `FOR UPDATE SKIP LOCKED`:
any number of scorers (threads, processes, replicas) take disjoint batches, and a scorer that
dies (even kill -9) releases its rows with its connection. The batch's score rows, its bucket
increments (summed per bucket, upserted in key order, so concurrent scorers never deadlock) and
the flag's reset commit together, so a post is scored and counted exactly once.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from alerts.routing import notifier
from models import Scorer
from models.lang import UNDETERMINED, detect_language
from monitor.config import Config
from monitor.core.clock import Clock
from monitor.detection import aggregates
from monitor.detection.incidents import Change, detect
from monitor.core.storage.db import transaction
from monitor.core.storage.schema import Post, Score


# What scoring and counting read of a post: rows, not ORM objects (a batch costs a few ms, not 100).
_POST_COLUMNS = (Post.id, Post.text, Post.lang, Post.brand, Post.source, Post.created_at, Post.author_followers)


@dataclass(frozen=True)
class Verdict:
    """A score row to store (and count): the model's result for a post, or the original's for a copy."""

    post_id: int
    model: str
    label: str | None
    confidence: float | None
    sentiment: float | None
    lang: str | None
    scored_at: datetime


_VERDICT_FIELDS = dataclasses.fields(Verdict)


def detect_incidents(sessions: sessionmaker[Session], config: Config, clock: Clock) -> list[Change]:
    """The detect step as configured: every brand, [detection], alerts queued as [alerts] routes them."""
    return detect(sessions, config.brands, config.detection, notifier(config.alerts), clock)


# A row of _POST_COLUMNS (copies: plus their original's score). SQLAlchemy types a Row's attributes
# as Any anyway, and a Row cannot satisfy the attribute protocol counting reads (aggregates._Counted).
PostRow = Any


def pending_posts(session: Session, limit: int) -> list[PostRow]:
    """Original (non-duplicate) posts no model has scored yet, oldest first, locked for this scorer.

    A post is scored and counted in the buckets once. After a model change, new posts get the new
    model's scores (each score row names its model) and older posts keep theirs: re-scoring the
    whole history would delay the newest posts, whose scores detection is waiting for.
    """
    return list(session.execute(
        select(*_POST_COLUMNS).where(Post.pending, Post.duplicate_of.is_(None))
        .order_by(Post.created_at, Post.id).limit(limit).with_for_update(skip_locked=True)
    ))


def pending_copies(session: Session, limit: int, now: datetime) -> list[tuple[PostRow, Verdict]]:
    """Re-posts by another author whose original is scored, oldest first, each with the original's first score.

    The same text from someone else is one more person saying it (a copy-paste complaint campaign is
    a crisis), so it counts in the buckets with the original's verdict, without a model run. Ingest
    folded it into the original, so it is never queued or linked to an incident on its own. A copy
    by the original's own author (the same post seen through a second source) is stored not
    pending: it never counts. A copy whose original is not scored yet waits for it.
    """
    original, inner = aliased(Post), aliased(Score)
    first_score = select(func.min(inner.id)).where(inner.post_id == original.id).scalar_subquery()
    query = (
        select(*_POST_COLUMNS, Score.model, Score.label, Score.confidence, Score.sentiment, Score.lang)
        .join(original, original.id == Post.duplicate_of)
        .join(Score, Score.id == first_score)
        .where(Post.pending, Post.duplicate_of.is_not(None))
        .order_by(Post.created_at, Post.id).limit(limit)
        .with_for_update(of=Post, skip_locked=True)
    )
    return [(row, Verdict(row.id, row.model, row.label, row.confidence, row.sentiment, row.lang, now))
            for row in session.execute(query)]


def score_pending(sessions: sessionmaker[Session], scorer: Scorer, now: datetime, limit: int = 256) -> int:
    """Score one batch of pending posts (and count pending copies) into the aggregates; returns how many."""
    with transaction(sessions) as session:
        posts = pending_posts(session, limit)
        results = scorer.score([p.text for p in posts], langs=[p.lang for p in posts]) if posts else []
        counted = [
            (post, Verdict(post.id, result.model if result else scorer.model_id,
                           result.label if result else None, result.confidence if result else None,
                           result.sentiment if result else None, result.lang if result else post.lang, now))
            for post, result in zip(posts, results, strict=True)
        ]
        done = _write(session, counted)
        found_langs: list[dict[str, object]] = []
        for post, result in zip(posts, results, strict=True):
            if not post.lang:  # the language found at scoring becomes the post's (queue filter, post page)
                found = result.lang if result else detect_language(post.text or "")
                if found and found != UNDETERMINED:
                    found_langs.append({"pid": post.id, "plang": found})
        if found_langs:  # one executemany, not an ORM update per post
            session.connection().execute(
                update(Post.__table__).where(Post.__table__.c.id == bindparam("pid")).values(lang=bindparam("plang")),
                found_langs)
        # Copies of the posts just scored count in the same run (the scores above are visible here).
        done += _write(session, pending_copies(session, limit, now))
        # One bucket upsert for posts and copies together, in key order: two upserts per
        # transaction would each be in order but not together, and two scorers could then take
        # the same two buckets in opposite orders (a deadlock PostgreSQL resolved by failing one).
        aggregates.record_batch(session, done)
        return len(done)


def _write(session: Session, counted: list[tuple[PostRow, Verdict]]) -> list[tuple[PostRow, Verdict]]:
    """Clear the batch's pending flags, then store the scores; returns what is to be counted.

    The flag is cleared first, by a conditional UPDATE that returns the rows it changed, and only
    those are stored: on PostgreSQL the row locks already make batches disjoint; on SQLite (no
    row locks) this is what keeps a second scorer thread from counting a post twice.
    """
    if not counted:
        return []
    ids = [post.id for post, _ in counted]
    cleared = set(session.scalars(
        update(Post).where(Post.id.in_(ids), Post.pending).values(pending=False).returning(Post.id)
        .execution_options(synchronize_session=False)))
    counted = [(post, verdict) for post, verdict in counted if post.id in cleared]
    if counted:
        session.execute(insert(Score.__table__), [  # not dataclasses.asdict: it deep-copies (0.2 s a batch)
            {f.name: getattr(verdict, f.name) for f in _VERDICT_FIELDS} for _, verdict in counted])
    return counted
