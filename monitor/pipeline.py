"""The stages between a stored post and an incident: scoring and aggregation.

Each stage works in bounded batches inside one transaction, so a crash mid-batch leaves the batch
pending and the next run picks it up; nothing is lost and nothing is counted twice.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

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


def score_pending(sessions: sessionmaker[Session], scorer: Scorer, now: datetime, limit: int = 256) -> int:
    """Score one batch of pending posts and add them to the aggregates; returns how many."""
    with transaction(sessions) as session:
        posts = pending_posts(session, limit)
        if not posts:
            return 0
        results = scorer.score([p.text for p in posts], langs=[p.lang for p in posts])
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
        return len(posts)
