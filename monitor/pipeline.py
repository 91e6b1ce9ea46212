"""The stages between a stored post and an incident: scoring and aggregation.

Each stage works in bounded batches inside one transaction, so a crash mid-batch leaves the batch
pending and the next run picks it up; nothing is lost and nothing is counted twice.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased, sessionmaker

from models import Scorer
from monitor.detection import aggregates
from monitor.storage.db import transaction
from monitor.storage.schema import Post, Score


def pending_posts(session: Session, limit: int) -> list[Post]:
    """Original (non-duplicate) posts no model has scored yet, oldest first.

    A post is scored and counted in the buckets once. After a model change, new posts get the new
    model's scores (each score row names its model) and older posts keep theirs: re-scoring the
    whole history would delay the newest posts, whose scores detection is waiting for.
    """
    scored = select(Score.id).where(Score.post_id == Post.id).exists()
    return list(
        session.scalars(
            select(Post).where(Post.duplicate_of.is_(None), ~scored).order_by(Post.created_at, Post.id).limit(limit)
        )
    )


def pending_copies(session: Session, limit: int) -> list[tuple[Post, Score]]:
    """Re-posts by another author whose original is scored, oldest first, each with the original's first score.

    The same text from someone else is one more person saying it (a copy-paste complaint campaign is
    a crisis), so it counts in the buckets with the original's verdict, without a model run. Ingest
    folded it into the original, so it is never queued or linked to an incident on its own. A copy
    by the original's own author (the same post seen through a second source) does not count.
    """
    original, inner = aliased(Post), aliased(Score)
    first_score = select(func.min(inner.id)).where(inner.post_id == original.id).scalar_subquery()
    counted = select(inner.id).where(inner.post_id == Post.id).exists()
    query = (
        select(Post, Score)
        .join(original, original.id == Post.duplicate_of)
        .join(Score, Score.id == first_score)
        .where(Post.duplicate_of.is_not(None), ~counted, Post.author.is_distinct_from(original.author))
        .order_by(Post.created_at, Post.id).limit(limit)
    )
    return [(copy, score) for copy, score in session.execute(query)]


def score_pending(sessions: sessionmaker[Session], scorer: Scorer, now: datetime, limit: int = 256) -> int:
    """Score one batch of pending posts (and count pending copies) into the aggregates; returns how many."""
    with transaction(sessions) as session:
        posts = pending_posts(session, limit)
        results = scorer.score([p.text for p in posts], langs=[p.lang for p in posts]) if posts else []
        for post, result in zip(posts, results, strict=True):
            score = Score(
                post_id=post.id, model=result.model if result else scorer.model_id, scored_at=now,
                label=result.label if result else None,
                confidence=result.confidence if result else None,
                sentiment=result.sentiment if result else None,
                lang=result.lang if result else post.lang,
            )
            session.add(score)
            aggregates.record(session, post, score)
        session.flush()  # copies of the posts just scored count in the same run
        copies = pending_copies(session, limit)
        for copy, verdict in copies:
            score = Score(post_id=copy.id, model=verdict.model, scored_at=now, label=verdict.label,
                          confidence=verdict.confidence, sentiment=verdict.sentiment, lang=verdict.lang)
            session.add(score)
            aggregates.record(session, copy, score)
        return len(posts) + len(copies)
