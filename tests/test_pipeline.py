"""Scoring stage: every post scored and counted once (copies by other authors too), a crash mid-batch loses nothing."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

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



def test_a_detection_tick_reads_the_same_rows_with_100_or_1500_negative_posts_in_the_hour(sessions, monkeypatch) -> None:
    """Issue 15: the viral read grew with the hour's negative posts (1.2 s after four minutes at
    250 posts/s). It reads only the posts whose engagement could fire, the most engaged first and a
    bounded number of them, and still finds exactly what reading every negative post finds. The
    same holds for older posts copied again within the lookback (issue 12): 100 or 1,500 ordinary
    copies of older complaints in the hour, and one older complaint re-shared widely."""
    from sqlalchemy import event

    from monitor.detection import incidents
    from monitor.detection.settings import DetectionSettings
    from monitor.detection.viral import RecentPost
    from tests.detection_helpers import add_scored_post

    now = T0 + timedelta(hours=1)
    spreading: dict[str, list[int]] = {"Small": [], "Big": []}
    with transaction(sessions) as session:
        for brand, negatives in (("Small", 100), ("Big", 1500)):
            for i in range(negatives):  # ordinary complaints: hardly anyone reacts
                add_scored_post(session, now - timedelta(seconds=2 * i + 1), "negative", brand=brand,
                                followers=50 + i % 400, reposts=i % 3, replies=i % 2)
            for i, (followers, engagement) in enumerate([(900_000, 4000), (300, 2500), (5_000_000, 60)]):
                spreading[brand].append(add_scored_post(
                    session, now - timedelta(minutes=10 + i), "negative", brand=brand,
                    followers=followers, reposts=engagement).id)
            olds = [add_scored_post(session, now - timedelta(minutes=70, seconds=i), "negative", brand=brand)
                    for i in range(negatives // 5 + 1)]
            copies = [FetchedPost(source="copies", external_id=f"{brand}-{i}", text=olds[i // 5].text,
                                  created_at=now - timedelta(seconds=2 * i + 1), author=f"sharer{i}",
                                  author_followers=60 + i % 300, reposts=i % 2) for i in range(negatives)]
            copies.append(FetchedPost(source="copies", external_id=f"{brand}-wide", text=olds[-1].text,
                                      created_at=now - timedelta(minutes=5), author="wide", author_followers=2_000_000,
                                      reposts=3000))
            store_posts(session, brand, None, copies, now)
            spreading[brand].append(olds[-1].id)
    settings = DetectionSettings(warmup_hours=0, detectors=["viral"])
    check = incidents.check_viral_posts
    handed: dict[str, int] = {}
    statements: list[str] = []

    def count_statement(conn: object, cursor: object, statement: str, *rest: object) -> None:
        statements.append(statement)

    engine = sessions.kw["bind"]
    event.listen(engine, "before_cursor_execute", count_statement)
    fired, sent = {}, {}
    try:
        for brand in ("Small", "Big"):
            def counted_check(posts: list[RecentPost], *args: Any, brand: str = brand) -> Any:
                handed[brand] = len(posts)  # the rows the viral read brought back
                return check(posts, *args)

            monkeypatch.setattr(incidents, "check_viral_posts", counted_check)
            statements.clear()
            with sessions() as session:
                signals = incidents.evaluate(session, brand, settings, 1.0, now)
            fired[brand] = sorted(s.post_ids[0] for s in signals if s.fired)
            sent[brand] = len(statements)
    finally:
        event.remove(engine, "before_cursor_execute", count_statement)

    assert handed["Small"] == handed["Big"] == 4, handed  # the four spreading posts, not the hour's 1,500
    assert sent["Big"] == sent["Small"]
    assert fired["Big"] == sorted(spreading["Big"])
    with sessions() as session:  # exactly what the check finds over every negative post of the hour
        for brand in ("Small", "Big"):
            posts = list(session.scalars(select(incidents.Post).where(incidents.Post.brand == brand)))
            since = now - timedelta(hours=1)
            every = [RecentPost(p.id, p.created_at, p.author_followers, p.reposts + p.replies)
                     for p in posts if p.duplicate_of is None and p.created_at >= since]
            for old in (p for p in posts if p.duplicate_of is None and p.created_at < since):
                recent = sorted((c for c in posts if c.duplicate_of == old.id and c.created_at >= since),
                                key=lambda c: (-(c.reposts + c.replies), c.created_at, c.id))
                if recent:
                    every.append(RecentPost(old.id, min(c.created_at for c in recent), recent[0].author_followers,
                                            sum(1 + c.reposts + c.replies for c in recent)))
            baseline = incidents.baseline_store.load(session, brand, now, settings)
            alpha = incidents.post_alpha(1.0, incidents.detector_share(settings, "viral"),
                                         baseline.rate_per_week("negative"))
            assert sorted(s.post_ids[0] for s in check(every, baseline.posts, alpha, 60, now) if s.fired) == fired[brand]


def test_a_crisis_tick_reads_only_the_posts_it_can_link(sessions, monkeypatch) -> None:
    """While a window fires, the posts behind it are linked to the incident, the most visible
    `link_posts_max` of them: those are ranked in SQL, so a burst of negatives is not read whole."""
    from monitor.detection import incidents
    from monitor.detection.aggregates import visibility
    from monitor.detection.settings import DetectionSettings
    from monitor.detection.signals import Signal
    from tests.detection_helpers import add_scored_post

    now = T0 + timedelta(hours=1)
    with transaction(sessions) as session:
        for i in range(600):
            add_scored_post(session, now - timedelta(seconds=5 * i + 1), "negative",
                            followers=(i * 37) % 1000, reposts=(i * 13) % 9, replies=i % 4)
        add_scored_post(session, now - timedelta(minutes=2), "neutral", followers=10**9)  # not negative: never linked
    window = Signal("volume", 60, now - timedelta(hours=1), 600.0, 10.0, 1e-9, 1e-4, True)
    settings = DetectionSettings(link_posts_max=25)
    read: list[int] = []
    query = incidents._negative_posts

    def counted(*args: Any) -> Any:
        rows = query(*args)
        read.append(len(rows))
        return rows

    monkeypatch.setattr(incidents, "_negative_posts", counted)
    with sessions() as session:
        run = incidents._Run(session, settings, lambda *args: None, now)
        linked = run.posts_behind("Acme", [window], now - timedelta(hours=1))
        negatives = session.scalars(select(incidents.Post).where(incidents.Post.text.like("%negative")))
        every = sorted(((p.id, visibility(p.author_followers, p.reposts, p.replies)) for p in negatives),
                       key=lambda item: (-item[1], item[0]))
    assert read == [25]  # not the window's 600
    assert linked == every[:25]
