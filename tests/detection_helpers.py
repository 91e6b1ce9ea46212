"""Shared pieces for the detection tests: scored posts without a model, and small post streams."""
from __future__ import annotations

import itertools
import json
import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy.orm import Session

from monitor.detection import aggregates
from monitor.core.ingest import content_hash
from monitor.core.storage.schema import Post, Score

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=timezone.utc)  # a Monday
_ids = itertools.count(1)


@dataclass(frozen=True)
class KeywordSentiment:
    label: str
    confidence: float
    sentiment: float
    lang: str
    model: str


class KeywordScorer:
    """A real (if crude) implementation of the models.Scorer protocol: words decide the label."""

    model_id = "keywords@test"

    def score(self, texts, langs=None):  # noqa: ANN001, ANN201
        out = []
        for text in texts:
            lowered = text.lower()
            if "broken" in lowered or "awful" in lowered:
                out.append(KeywordSentiment("negative", 0.9, -0.8, "en", self.model_id))
            elif "love" in lowered:
                out.append(KeywordSentiment("positive", 0.9, 0.8, "en", self.model_id))
            else:
                out.append(KeywordSentiment("neutral", 0.8, 0.0, "en", self.model_id))
        return out


def add_scored_post(
    session: Session, created_at: datetime, label: str, *, brand: str = "Acme", source: str = "src-a",
    followers: int | None = 100, reposts: int = 0, replies: int = 0, model: str = "keywords@test",
) -> Post:
    """Insert one original post with its score and count it, as the scoring stage does."""
    n = next(_ids)
    text = f"Acme post {n} {label}"
    post = Post(source=source, external_id=f"x{n}", brand=brand, author=f"user{n}", author_followers=followers,
                text=text, lang="en", created_at=created_at, fetched_at=created_at, likes=0, reposts=reposts,
                replies=replies, content_hash=content_hash(text))
    session.add(post)
    session.flush()
    score = Score(post_id=post.id, model=model, label=label, confidence=0.9,
                  sentiment={"negative": -0.8, "positive": 0.8}.get(label, 0.0), lang="en", scored_at=created_at)
    session.add(score)
    aggregates.record(session, post, score)
    return post


def add_background(session: Session, start: datetime, end: datetime, every_minutes: int = 2,
                   negative_every: int = 5, brand: str = "Acme") -> int:
    """A steady stream: one post every `every_minutes`, every `negative_every`-th negative."""
    count, t = 0, start
    while t < end:
        label = "negative" if count % negative_every == 0 else ("positive" if count % 2 else "neutral")
        add_scored_post(session, t + timedelta(seconds=7), label, brand=brand)
        count += 1
        t += timedelta(minutes=every_minutes)
    return count


def daily_rate(t: datetime, peak: float) -> float:
    """Counts per hour with a daytime peak at 15:00 and a night trough (make_replay's shape)."""
    hour = t.hour + t.minute / 60
    return peak * (0.2 + 0.8 * (0.5 + 0.5 * math.cos((hour - 15) / 24 * 2 * math.pi)))


def write_stream(path: Path, seed: int, hours: float, crisis_at_hour: float | None, brand: str = "Acme") -> None:
    """A JSONL post stream: a seasonal background and, optionally, a growing complaint."""
    rng = random.Random(seed)
    rows = []
    t = T0
    end = T0 + timedelta(hours=hours)
    n = 0
    while t < end:
        t += timedelta(hours=rng.expovariate(40))
        if rng.random() * 40 > daily_rate(t, 40):
            continue
        kind = rng.choices(["awful and broken", "love it", "is fine"], weights=[0.2, 0.4, 0.4])[0]
        rows.append((t, f"{brand} {kind} #{n}", rng.randrange(20, 2000)))
        n += 1
    if crisis_at_hour is not None:
        c0 = T0 + timedelta(hours=crisis_at_hour)
        for i in range(120):
            minute = 30 * math.log2(1 + i / 2)  # doubling every 30 minutes
            rows.append((c0 + timedelta(minutes=minute), f"{brand} your update is broken, awful #{n + i}", 150))
    rows.sort()
    with path.open("w", encoding="utf-8") as handle:
        for i, (created, text, followers) in enumerate(rows):
            handle.write(json.dumps({
                "id": f"s{seed}-{i}", "created_at": created.isoformat().replace("+00:00", "Z"), "author": f"u{i}",
                "author_followers": followers, "text": text, "lang": "en", "likes": 0, "reposts": 1, "replies": 0,
            }) + "\n")
