"""A brand's baseline in the database: loaded on each detect tick, caught up hour by hour.

The state row says up to which hour the buckets have been learnt; each tick folds the hours that
have ended since, from one query of their minute buckets, so a tick costs a primary-key read
except once an hour. Every hour is learnt, incidents included: the baseline's robust weights
keep a burst from teaching that bursts are normal (`baseline`), and `windows.fold_hour`
calibrates the detectors on the hour first.
"""
from __future__ import annotations

import copy
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from monitor.detection import aggregates
from monitor.detection.baseline import HOUR, SeasonalBaseline, floor_hour
from monitor.detection.settings import DetectionSettings
from monitor.core.storage.schema import DetectionBaseline, Post
from monitor.detection.windows import fold_hour

NEGATIVE_PRIOR_SHARE = 0.3  # cold start: a new brand's prior share of negative posts


def new_baseline(settings: DetectionSettings, state: dict | None = None) -> SeasonalBaseline:
    rate = settings.cold_start_posts_per_hour
    return SeasonalBaseline(
        {"volume": rate, "negative": rate * NEGATIVE_PRIOR_SHARE}, settings.windows_minutes,
        settings.baseline_memory_weeks, state,
    )


# revision -> state as last written by this process; rows are re-read only when someone else wrote.
_STATES: dict[str, dict[str, Any]] = {}
_HEAD = select(DetectionBaseline.folded_until, DetectionBaseline.revision).where(
    DetectionBaseline.brand == bindparam("brand"))


def load(session: Session, brand: str, now: datetime, settings: DetectionSettings) -> SeasonalBaseline:
    """The brand's baseline with every completed hour learnt (persisted in this transaction)."""
    head = session.connection().execute(_HEAD, {"brand": brand}).first()
    if head is None:
        first = aggregates.first_minute(session, brand)
        if first is None:
            return new_baseline(settings)  # nothing to learn yet; nothing to store
        folded_until, state = floor_hour(first), None
    else:
        folded_until, revision = head
        state = _STATES.get(revision)
        if state is None:
            state = session.get(DetectionBaseline, brand).state  # type: ignore[union-attr]
            _STATES[revision] = state
    target = floor_hour(now)
    # After a long outage, learning more than two memories back would be forgotten anyway.
    start = max(folded_until, target - timedelta(weeks=2 * settings.baseline_memory_weeks))
    if start >= target:
        return new_baseline(settings, state)  # read only: the cached state is not modified
    baseline = new_baseline(settings, copy.deepcopy(state) if state is not None else None)
    _learn(session, brand, baseline, start, target, settings)
    revision, new_state = uuid.uuid4().hex, baseline.state()
    row = session.get(DetectionBaseline, brand)
    if row is None:
        session.add(DetectionBaseline(brand=brand, folded_until=target, state=new_state, updated_at=now,
                                      revision=revision))
    else:
        row.folded_until, row.state, row.updated_at, row.revision = target, new_state, now, revision
        flag_modified(row, "state")
    session.flush()
    if len(_STATES) > 1000:
        _STATES.clear()
    _STATES[revision] = copy.deepcopy(new_state)
    return baseline


def _learn(
    session: Session, brand: str, baseline: SeasonalBaseline, start: datetime, end: datetime,
    settings: DetectionSettings,
) -> None:
    by_minute = {m.start: m for m in aggregates.minutes(session, brand, start, end)}
    posts: dict[datetime, list[tuple[int | None, int]]] = {}
    for created, followers, reposts, replies in session.execute(
        select(Post.created_at, Post.author_followers, Post.reposts, Post.replies)
        .where(Post.brand == brand, Post.duplicate_of.is_(None), Post.created_at >= start, Post.created_at < end)
        .order_by(Post.created_at, Post.id)
    ):
        posts.setdefault(floor_hour(created), []).append((followers, (reposts or 0) + (replies or 0)))
    hour = start
    while hour < end:
        volume, negative = [0] * 60, [0] * 60
        for i in range(60):
            m = by_minute.get(hour + timedelta(minutes=i))
            if m is not None:
                volume[i], negative[i] = m.volume, m.negative
        fold_hour(baseline, hour, {"volume": volume, "negative": negative}, 1, settings, posts.get(hour, ()))
        hour += HOUR
