"""What an alert shows, read from the database at send time so every message carries the current state.

`incident.detail` is written by detection (`monitor.detection.incidents`): the numbers shown are
those of its most surprising firing test (`observed`, `expected`, `window_minutes`, `p_value`).
Anything missing is simply left out of the message.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.core.storage.schema import Bucket, Incident, IncidentEvent, IncidentPost, Post
from monitor.core.phrases import incident_themes
from monitor.core.wording import headline_signals
from monitor.core.enums import IncidentStatus

TREND_MINUTES = 30


@dataclass(frozen=True)
class PostView:
    id: int
    source: str
    author: str
    reach: int
    url: str | None
    text: str
    created_at: datetime


@dataclass(frozen=True)
class EventView:
    id: int
    kind: str
    actor: str | None
    at: datetime
    data: dict[str, Any]


@dataclass(frozen=True)
class IncidentView:
    id: int
    brand: str
    severity: int
    status: str
    title: str
    opened_at: datetime
    started_at: datetime
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    snoozed_until: datetime | None
    escalation_level: int
    metric: str
    observed: float | None
    expected: float | None
    window_minutes: float | None
    probability: float | None
    trend: list[int] = field(default_factory=list)
    top_posts: list[PostView] = field(default_factory=list)
    web_url: str | None = None
    # Detection's signal dicts worth a sentence now (`wording.headline_signals`), and its peak.
    signals: list[dict[str, Any]] = field(default_factory=list)
    peak: dict[str, Any] | None = None
    quiet_minutes: float | None = None  # set when detection closed it for want of new signals (older rule)
    back_to_baseline: bool = False  # set when detection closed it because counts were back to normal
    themes: list[str] = field(default_factory=list)  # what the complaint is about (key phrases)
    theme_posts: list[PostView] = field(default_factory=list)  # posts that say it best


def _number(detail: dict[str, Any], *keys: str) -> float | None:
    for key in keys:
        value = detail.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


def reach(post: Post) -> int:
    """Followers when the platform tells us, else the post's own engagement."""
    if post.author_followers is not None:
        return int(post.author_followers)
    return int(post.likes or 0) + int(post.reposts or 0) + int(post.replies or 0)


def _posts_by_id(session: Session, ids: list[int]) -> list[PostView]:
    found = {p.id: p for p in session.scalars(select(Post).where(Post.id.in_(ids)))} if ids else {}
    return [PostView(p.id, p.source, p.author, reach(p), p.url, p.text, p.created_at)
            for p in (found[i] for i in ids if i in found)]


def top_posts(session: Session, incident_id: int, limit: int) -> list[PostView]:
    posts = session.scalars(
        select(Post).join(IncidentPost, IncidentPost.post_id == Post.id).where(IncidentPost.incident_id == incident_id)
    ).all()
    ranked = sorted(posts, key=lambda p: (-reach(p), -p.created_at.timestamp(), p.id))[:limit]
    return [PostView(p.id, p.source, p.author, reach(p), p.url, p.text, p.created_at) for p in ranked]


def trend(session: Session, brand: str, end: datetime, minutes: int = TREND_MINUTES) -> list[int]:
    """Negative posts per minute for the brand over the last `minutes`, oldest first (all sources summed)."""
    end = end.replace(second=0, microsecond=0)
    start = end - timedelta(minutes=minutes - 1)
    rows = session.execute(
        select(Bucket.start, func.sum(Bucket.negative))
        .where(Bucket.brand == brand, Bucket.start >= start, Bucket.start <= end)
        .group_by(Bucket.start)
    ).all()
    counts = [0] * minutes
    for bucket_start, negative in rows:
        index = int((bucket_start - start).total_seconds() // 60)
        if 0 <= index < minutes:
            counts[index] += int(negative or 0)
    return counts


METRICS = {"volume": "negative posts", "share": "negative posts", "viral": "engagements on one post"}


def headline_signal(detail: dict[str, Any]) -> dict[str, Any]:
    """The numbers to show: the most surprising firing test in detection's `current`, else its `peak`,
    else the detail itself (flat `observed`/`expected`/`window_minutes`/`probability` keys)."""
    current = [s for s in detail.get("current") or [] if isinstance(s, dict) and s.get("fired")]
    if current:
        return min(current, key=lambda s: float(s.get("p_value", 1.0)))
    peak = detail.get("peak")
    return peak if isinstance(peak, dict) else detail


def incident_view(session: Session, incident: Incident, now: datetime, top: int = 5,
                  web_base_url: str | None = None) -> IncidentView:
    detail = incident.detail or {}
    signal = headline_signal(detail)
    current = [s for s in detail.get("current") or [] if isinstance(s, dict)]
    peak = detail.get("peak") if isinstance(detail.get("peak"), dict) else None
    themes = incident_themes(session, incident.id, limit=5)
    quiet, back = None, False
    if incident.status == IncidentStatus.CLOSED:
        closed = session.scalar(select(IncidentEvent.data).where(IncidentEvent.incident_id == incident.id,
                                                                 IncidentEvent.kind == "closed")
                                .order_by(IncidentEvent.id.desc()).limit(1))
        quiet = _number(closed or {}, "quiet_minutes")
        back = "back_to_baseline" in (closed or {})
    metric = signal.get("metric") or METRICS.get(str(signal.get("detector")), "negative posts")
    return IncidentView(
        id=incident.id, brand=incident.brand, severity=incident.severity, status=incident.status,
        title=incident.title or "", opened_at=incident.opened_at, started_at=incident.started_at,
        acknowledged_by=incident.acknowledged_by, acknowledged_at=incident.acknowledged_at,
        snoozed_until=incident.snoozed_until, escalation_level=incident.escalation_level,
        metric=str(metric),
        observed=_number(signal, "observed", "count", "negative"),
        expected=_number(signal, "expected", "baseline"),
        window_minutes=_number(signal, "window_minutes", "window"),
        probability=_number(signal, "probability", "p_value"),
        trend=trend(session, incident.brand, min(now, incident.closed_at or now)),
        top_posts=top_posts(session, incident.id, top),
        web_url=f"{web_base_url.rstrip('/')}/incidents/{incident.id}" if web_base_url else None,
        signals=[dict(s) for s in headline_signals(current)], peak=peak, quiet_minutes=quiet, back_to_baseline=back,
        themes=themes.words() if themes else [], theme_posts=_posts_by_id(session, themes.post_ids if themes else []),
    )


def event_view(event: IncidentEvent) -> EventView:
    return EventView(event.id, event.kind, event.actor, event.at, dict(event.data or {}))
