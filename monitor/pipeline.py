"""The stages between a stored post and an incident: scoring and aggregation.

Each stage works in bounded batches inside one transaction, so a crash mid-batch leaves the batch
pending and the next run picks it up; nothing is lost and nothing is counted twice.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, select
from sqlalchemy.orm import Session, sessionmaker

from models import Scorer
from monitor.detection import aggregates
from monitor.storage.db import transaction
from monitor.storage.schema import Post, Score


def pending_posts(session: Session, model_id: str, limit: int) -> list[Post]:
    """Original (non-duplicate) posts that the given model has not scored yet, oldest first."""
    scored = select(Score.id).where(and_(Score.post_id == Post.id, Score.model == model_id)).exists()
    return list(
        session.scalars(
            select(Post).where(Post.duplicate_of.is_(None), ~scored).order_by(Post.created_at, Post.id).limit(limit)
        )
    )


def score_pending(sessions: sessionmaker[Session], scorer: Scorer, now: datetime, limit: int = 256) -> int:
    """Score one batch of pending posts and add them to the aggregates; returns how many."""
    with transaction(sessions) as session:
        posts = pending_posts(session, scorer.model_id, limit)
        if not posts:
            return 0
        results = scorer.score([p.text for p in posts], langs=[p.lang for p in posts])
        for post, result in zip(posts, results, strict=True):
            score = Score(
                post_id=post.id, model=scorer.model_id, scored_at=now,
                label=result.label if result else None,
                confidence=result.confidence if result else None,
                sentiment=result.sentiment if result else None,
                lang=result.lang if result else post.lang,
            )
            session.add(score)
            aggregates.record(session, post, score)
        return len(posts)
