"""Scoring stage: every post scored and counted once (copies by other authors too), a crash mid-batch loses nothing."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from monitor.core.posts import FetchedPost
from models import Sentiment
from monitor.detection.aggregates import reach_weight, recount, stored
from monitor.core.ingest import store_posts
from monitor.pipeline import score_pending
from monitor.core.storage.db import transaction
from monitor.core.storage.schema import Bucket, Score

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)


class KeywordScorer:
    """A deterministic Scorer for pipeline tests: 'late' is negative, everything else neutral."""

    def __init__(self, model_id: str = "keywords@1", fail: bool = False) -> None:
        self.model_id, self.fail, self.calls = model_id, fail, 0

    def score(self, texts: Sequence[str], langs: Sequence[str | None] | None = None) -> list[Sentiment | None]:
        self.calls += 1
        if self.fail:
            raise RuntimeError("model crashed mid-batch")
        return [Sentiment("negative", 0.9, -0.9, "en", self.model_id) if "late" in t
                else None if not t.isascii() else Sentiment("neutral", 0.8, 0.0, "en", self.model_id)
                for t in texts]


def _posts(n: int) -> list[FetchedPost]:
    return [FetchedPost(source="s", external_id=str(i), text=f"Acme parcel {i} late" if i % 3 == 0 else f"Acme {i}",
                        created_at=T0 + timedelta(seconds=20 * i), author=f"u{i}") for i in range(n)]


def test_each_post_is_scored_and_counted_once_even_after_a_model_change(sessions) -> None:
    with transaction(sessions) as s:
        store_posts(s, "Acme", None, _posts(30), T0)
    scorer = KeywordScorer()
    assert score_pending(sessions, scorer, T0, limit=8) == 8
    while score_pending(sessions, scorer, T0, limit=8):
        pass
    assert score_pending(sessions, KeywordScorer("keywords@2"), T0) == 0  # a new model does not re-count
    with sessions() as s:
        assert s.scalar(select(func.count(Score.id))) == 30
        assert s.scalar(select(func.sum(Bucket.volume))) == 30
        assert s.scalar(select(func.sum(Bucket.negative))) == 10
        assert stored(s, "Acme") == recount(s, "Acme")


def test_a_copy_by_another_author_counts_as_a_mention_with_the_originals_verdict(sessions) -> None:
    with transaction(sessions) as s:
        store_posts(s, "Acme", None, _posts(3), T0)  # post 0, by u0, is negative
    score_pending(sessions, KeywordScorer(), T0)
    later = T0 + timedelta(minutes=5)
    copies = [
        FetchedPost(source="s", external_id="c1", text="ACME  parcel 0 late", created_at=later, author="x",
                    author_followers=10_000),
        FetchedPost(source="other", external_id="0", text="Acme parcel 0 late", created_at=T0, author="u0"),
    ]  # a copy-paste complaint by someone else, and the same post seen through a second source
    with transaction(sessions) as s:
        assert store_posts(s, "Acme", None, copies, later).duplicates == 2
    scorer = KeywordScorer()
    assert score_pending(sessions, scorer, later) == 1 and scorer.calls == 0  # no model run for a copy
    assert score_pending(sessions, scorer, later) == 0
    with sessions() as s:
        bucket = s.scalars(select(Bucket).where(Bucket.start == later)).one()
        assert (bucket.volume, bucket.negative) == (1, 1) and bucket.reach_negative == pytest.approx(reach_weight(10_000))
        assert s.scalar(select(func.sum(Bucket.volume))) == 4
        assert stored(s, "Acme") == recount(s, "Acme")


def test_a_crash_mid_batch_leaves_the_whole_batch_pending(sessions) -> None:
    with transaction(sessions) as s:
        store_posts(s, "Acme", None, _posts(5), T0)
    with pytest.raises(RuntimeError):
        score_pending(sessions, KeywordScorer(fail=True), T0)
    with sessions() as s:
        assert s.scalar(select(func.count(Score.id))) == 0 and s.scalar(select(func.count(Bucket.id))) == 0
    assert score_pending(sessions, KeywordScorer(), T0) == 5


def test_unscored_posts_are_stored_as_unscored_not_guessed(sessions) -> None:
    with transaction(sessions) as s:
        store_posts(s, "Acme", None, [FetchedPost(source="s", external_id="ru", text="Acme очень плохо",
                                                  created_at=T0, author="u", lang="ru")], T0)
    score_pending(sessions, KeywordScorer(), T0)
    with sessions() as s:
        score = s.scalars(select(Score)).one()
        assert score.label is None and score.lang == "ru"


def test_the_language_found_at_scoring_is_kept_on_the_post(sessions) -> None:
    """A pushed post without `lang` gets the scorer's (or detection's) language, so filters and pages show it."""
    from monitor.core.storage.schema import Post

    with transaction(sessions) as s:
        store_posts(s, "Acme", None, [
            FetchedPost(source="s", external_id="en", text="Acme parcel late again", created_at=T0, author="u"),
            FetchedPost(source="s", external_id="zh", text="Acme 的退款太慢了，客服也不回复", created_at=T0, author="v"),
            FetchedPost(source="s", external_id="tagged", text="Acme late", created_at=T0, author="w", lang="de"),
        ], T0)
    score_pending(sessions, KeywordScorer(), T0)
    with sessions() as s:
        langs = dict(s.execute(select(Post.external_id, Post.lang)).all())
    assert langs == {"en": "en", "zh": "zh", "tagged": "de"}  # the source's own tag is never overwritten
