"""An incident's timeline: the minutes around it, its milestones, its events and its posts.

Reads only. The expected counts come from the brand's stored baseline (`detection_baselines`,
the model detection learns; bursts are down-weighted when learnt, so it shows what a normal
hour looks like) without folding new hours, so a report never writes. The detection
threshold is the number of negative posts the shortest window would need to fire, computed with
detection's own false-alarm budget and calibration (`windows.model_alpha`) and tail test, shown as a per-minute
rate sustained over that window; the activity scaling the volume test applies on busy hours is
left out, so the line is the quiet-hour threshold.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from monitor.core import wording
from monitor.core.phrases import Themes, incident_themes
from monitor.detection import aggregates
from monitor.detection.baseline import SeasonalBaseline
from monitor.detection.baseline_store import new_baseline
from monitor.detection.settings import BrandRules, DetectionSettings
from monitor.detection.stats import negative_binomial_tail
from monitor.core.incidents import IncidentNotFound as IncidentNotFound  # re-exported for reports
from monitor.core.incidents import get_incident, incident_events
from monitor.detection.windows import model_alpha
from monitor.core.queue import effective_state
from monitor.reports.figures import IncidentFigures, incident_figures
from monitor.core.storage.schema import DetectionBaseline, FlaggedPost, Incident, IncidentEvent, IncidentPost, Post

MAX_POINTS = 360  # longer spans use coarser buckets so the chart stays readable
BEFORE = timedelta(minutes=30)
AFTER = timedelta(minutes=15)
OPEN_TAIL = timedelta(hours=2)  # an open incident is shown up to now, at most this long after its last event


@dataclass(frozen=True)
class Point:
    start: datetime
    volume: int
    negative: int
    expected_volume: float
    expected_negative: float
    threshold: float | None  # negatives in this bucket that, sustained, fire the shortest window


@dataclass(frozen=True)
class Marker:
    at: datetime
    kind: str  # started | detected | alert | alert_failed | escalated | severity | acknowledged | first_answer | resolved | closed
    label: str


@dataclass(frozen=True)
class EventRow:
    at: datetime
    kind: str
    actor: str | None
    summary: str  # a plain sentence
    data: dict[str, Any]
    details: str = ""  # the technical numbers, shown on demand


@dataclass(frozen=True)
class PostRow:
    post_id: int
    source: str
    author: str
    text: str
    url: str | None
    lang: str | None
    created_at: datetime
    flagged: bool
    state: str  # not flagged | unclaimed | claimed | answered | dismissed
    handled_by: str | None
    handled_at: datetime | None
    answer_url: str | None
    urgency: float | None

    @property
    def state_label(self) -> str:
        if self.state in ("claimed", "answered", "dismissed") and self.handled_by:
            return f"{self.state} by {self.handled_by}"
        return self.state


@dataclass(frozen=True)
class IncidentInfo:
    id: int
    brand: str
    title: str
    status: str
    severity: int
    started_at: datetime
    opened_at: datetime
    closed_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None


@dataclass(frozen=True)
class Timeline:
    incident: IncidentInfo
    figures: IncidentFigures
    since: datetime
    until: datetime
    bucket_minutes: int
    threshold_window_minutes: int | None
    points: list[Point]
    markers: list[Marker]
    events: list[EventRow]
    posts: list[PostRow]
    generated_at: datetime
    notes: list[str] = field(default_factory=list)
    themes: Themes | None = None  # what the complaint is about: key terms of its negative posts
    theme_posts: list[PostRow] = field(default_factory=list)  # representative posts, best first


def build_timeline(session: Session, incident_id: int, settings: DetectionSettings, now: datetime,
                   false_alarms_per_week: float | None = None, brand_terms: Sequence[str] = ()) -> Timeline:
    """Everything a report shows about one incident; raises IncidentNotFound."""
    incident = get_incident(session, incident_id)
    figures = incident_figures(session, incident_id)
    assert figures is not None
    events = incident_events(session, incident_id)
    last_event = max([e.at for e in events] + [incident.opened_at])
    end = incident.closed_at or min(now, last_event + OPEN_TAIL)
    since = aggregates.floor_minute(min(incident.started_at, incident.opened_at) - BEFORE)
    until = aggregates.floor_minute(max(end, incident.opened_at) + AFTER) + timedelta(minutes=1)
    # Only the past: a bucket not yet over would read as "complaints stopped" (the last whole minute ends it).
    until = max(since + timedelta(minutes=1), min(until, aggregates.floor_minute(now)))
    span = (until - since).total_seconds() / 60
    step = max(1, math.ceil(span / MAX_POINTS))
    whole = math.ceil(span / step)
    if since + timedelta(minutes=step * whole) > aggregates.floor_minute(now):
        whole = max(1, math.floor(span / step))
    until = since + timedelta(minutes=step * whole)
    budget = false_alarms_per_week or settings.false_alarms_per_week
    baseline = _stored_baseline(session, incident.brand, settings)
    points, window = _points(session, incident.brand, since, until, step, baseline, settings, budget)
    posts = _posts(session, incident_id, now)
    by_id = {p.post_id: p for p in posts}
    themes = incident_themes(session, incident_id, brand_terms)
    notes = []
    if baseline is None:
        notes.append("No baseline has been learnt for this brand yet: expected counts are the cold-start prior.")
    return Timeline(
        incident=IncidentInfo(incident.id, incident.brand, incident.title or "", incident.status, incident.severity,
                              incident.started_at, incident.opened_at, incident.closed_at,
                              incident.acknowledged_at, incident.acknowledged_by),
        figures=figures, since=since, until=until, bucket_minutes=step, threshold_window_minutes=window,
        points=points, markers=_markers(figures, events), events=[_event_row(e) for e in events],
        posts=posts, generated_at=now, notes=notes, themes=themes,
        theme_posts=[by_id[i] for i in (themes.post_ids if themes else []) if i in by_id],
    )


def load_timeline(
    session: Session, incident_id: int, settings: DetectionSettings, brands: Sequence[BrandRules], now: datetime
) -> Timeline:
    """`build_timeline` with the configured detection settings and the brand's own false-alarm budget."""
    brand = session.scalar(select(Incident.brand).where(Incident.id == incident_id))
    configured = next((b for b in brands if b.name == brand), None)
    return build_timeline(session, incident_id, settings, now,
                          configured.false_alarms_per_week if configured else None,
                          configured.terms if configured else ())


def _stored_baseline(session: Session, brand: str, settings: DetectionSettings) -> SeasonalBaseline | None:
    row = session.get(DetectionBaseline, brand)
    return None if row is None else new_baseline(settings, row.state)


def _points(session: Session, brand: str, since: datetime, until: datetime, step: int,
            baseline: SeasonalBaseline | None, settings: DetectionSettings,
            budget: float) -> tuple[list[Point], int | None]:
    model = baseline or new_baseline(settings)
    counts = {m.start: m for m in aggregates.minutes(session, brand, since, until)}
    window = min(settings.windows_minutes) if "volume" in settings.detectors else None
    alpha = model_alpha(model, settings, budget, "volume") if window else None
    size = timedelta(minutes=step)
    points = []
    t = since
    while t < until:
        volume = negative = 0
        for i in range(step):
            m = counts.get(t + timedelta(minutes=i))
            if m is not None:
                volume, negative = volume + m.volume, negative + m.negative
        threshold = None
        if window is not None and alpha is not None:
            end = t + size
            expected = model.expect("negative", end - timedelta(minutes=window), end)
            threshold = _threshold(expected.mean, expected.size, alpha, settings.min_negative_posts) * step / window
        points.append(Point(t, volume, negative, model.estimate("volume", t, t + size).mean,
                            model.estimate("negative", t, t + size).mean, threshold))
        t += size
    return points, window


def _threshold(mean: float, size: float, alpha: float, min_posts: int) -> float:
    """The least count k >= min_posts with P(X >= k) <= alpha (the tail test detection fires on)."""
    low, high = min_posts, max(min_posts, int(mean) + 1)
    while negative_binomial_tail(high, mean, size) > alpha:
        low, high = high, high * 2
        if high > 10**9:
            return float(high)
    if negative_binomial_tail(low, mean, size) <= alpha:
        return float(low)
    while high - low > 1:  # tail(low) > alpha >= tail(high)
        mid = (low + high) // 2
        if negative_binomial_tail(mid, mean, size) <= alpha:
            high = mid
        else:
            low = mid
    return float(high)


def _markers(figures: IncidentFigures, events: list[IncidentEvent]) -> list[Marker]:
    markers = [Marker(figures.started_at, "started", "estimated start"),
               Marker(figures.detected_at, "detected", "detected")]
    if figures.first_alert_at is not None:
        markers.append(Marker(figures.first_alert_at, "alert", "first alert"))
    if figures.first_alert_failed_at is not None:
        markers.append(Marker(figures.first_alert_failed_at, "alert_failed", "alert failed"))
    for e in events:
        data = e.data or {}
        if e.kind == "escalated":
            level = data.get("level")
            markers.append(Marker(e.at, "escalated", f"escalated L{level + 1}" if isinstance(level, int) else "escalated"))
        elif e.kind == "severity_changed":
            markers.append(Marker(e.at, "severity", f"S{data.get('to', '?')}"))
    if figures.acknowledged_at is not None:
        markers.append(Marker(figures.acknowledged_at, "acknowledged", f"ack {figures.acknowledged_by or ''}".strip()))
    if figures.first_answer_at is not None:
        markers.append(Marker(figures.first_answer_at, "first_answer", "first answer"))
    resolved = [e for e in events if e.kind in ("resolved", "closed")]
    for e in resolved[:2]:
        markers.append(Marker(e.at, e.kind, e.kind if e.kind == "closed" or not e.actor else f"resolved {e.actor}"))
    if not resolved and figures.resolved_at is not None:
        markers.append(Marker(figures.resolved_at, "closed", "closed"))
    return sorted(markers, key=lambda m: m.at)


def describe(kind: str, data: dict[str, Any], actor: str | None = None) -> str:
    """An event in one plain sentence (`wording.event_sentence`)."""
    return wording.event_sentence(kind, data, actor)


def _event_row(event: IncidentEvent) -> EventRow:
    data = dict(event.data or {})
    return EventRow(event.at, event.kind, event.actor, describe(event.kind, data, event.actor), data,
                    wording.event_details(event.kind, data))


def _posts(session: Session, incident_id: int, now: datetime) -> list[PostRow]:
    linked = select(IncidentPost.post_id).where(IncidentPost.incident_id == incident_id)
    flagged = select(FlaggedPost.post_id).where(FlaggedPost.incident_id == incident_id)
    rows = session.execute(
        select(Post, FlaggedPost).outerjoin(FlaggedPost, FlaggedPost.post_id == Post.id)
        .where(or_(Post.id.in_(linked), Post.id.in_(flagged)))
    ).all()
    out = []
    for post, flag in rows:
        if flag is None:
            state, who, at, url, urgency = "not flagged", None, None, None, None
        else:
            state = effective_state(flag, now)
            who = flag.claimed_by if state != "open" else None
            at = flag.answered_at if state in ("answered", "dismissed") else flag.claimed_at if state == "claimed" else None
            url, urgency = flag.answer_url, flag.urgency
            state = "unclaimed" if state == "open" else state
        out.append(PostRow(post.id, post.source, post.author, post.text, post.url, post.lang, post.created_at,
                           flag is not None, state, who, at, url, urgency))
    # Flagged posts first, most urgent first; then the rest oldest first.
    return sorted(out, key=lambda p: (not p.flagged, -(p.urgency or 0.0), p.created_at, p.post_id))


def timeline_json(t: Timeline) -> dict[str, Any]:
    """The timeline as JSON-ready data (the API's answer)."""
    f = t.figures

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    def secs(value: timedelta | None) -> float | None:
        return None if value is None else value.total_seconds()

    return {
        "incident": {**{k: iso(v) if isinstance(v, datetime) else v for k, v in vars(t.incident).items()}},
        "figures": {
            "started_at": iso(f.started_at), "detected_at": iso(f.detected_at), "first_alert_at": iso(f.first_alert_at),
            "first_alert_delivered": f.first_alert_delivered, "alerts_failed": f.alerts_failed,
            "first_alert_failed_at": iso(f.first_alert_failed_at), "acknowledged_at": iso(f.acknowledged_at),
            "acknowledged_by": f.acknowledged_by, "first_answer_at": iso(f.first_answer_at),
            "resolved_at": iso(f.resolved_at), "detection_delay_seconds": secs(f.detection_delay),
            "time_to_detect_seconds": secs(f.time_to_detect), "time_to_acknowledge_seconds": secs(f.time_to_acknowledge),
            "time_to_first_answer_seconds": secs(f.time_to_first_answer),
            "time_to_resolve_seconds": secs(f.time_to_resolve), "escalations": f.escalations,
            "max_escalation_level": f.max_level,
            "posts": {"flagged": f.posts.flagged, "answered": f.posts.answered, "dismissed": f.posts.dismissed,
                      "claimed": f.posts.claimed, "unclaimed": f.posts.unclaimed,
                      "share_answered": f.posts.share_answered, "answered_by_agent": f.posts.by_agent,
                      "per_agent": f.posts.per_agent},
        },
        "chart": {
            "since": iso(t.since), "until": iso(t.until), "bucket_minutes": t.bucket_minutes,
            "threshold_window_minutes": t.threshold_window_minutes,
            "points": [{"start": iso(p.start), "volume": p.volume, "negative": p.negative,
                        "expected_volume": round(p.expected_volume, 3), "expected_negative": round(p.expected_negative, 3),
                        "threshold": None if p.threshold is None else round(p.threshold, 3)} for p in t.points],
            "markers": [{"at": iso(m.at), "kind": m.kind, "label": m.label} for m in t.markers],
        },
        "events": [{"at": iso(e.at), "kind": e.kind, "actor": e.actor, "summary": e.summary, "details": e.details,
                    "data": e.data}
                   for e in t.events],
        "posts": [{"post_id": p.post_id, "source": p.source, "author": p.author, "text": p.text, "url": p.url,
                   "lang": p.lang, "created_at": iso(p.created_at), "flagged": p.flagged, "state": p.state,
                   "handled_by": p.handled_by, "handled_at": iso(p.handled_at), "answer_url": p.answer_url,
                   "urgency": p.urgency} for p in t.posts],
        "notes": t.notes,
        "themes": None if t.themes is None else {
            "terms": [{"text": x.text, "incident_posts": x.incident_posts, "usual_share": round(x.usual_share, 4),
                       "z": round(x.z, 3)} for x in t.themes.terms],
            "post_ids": t.themes.post_ids, "incident_posts": t.themes.incident_posts,
            "usual_posts": t.themes.usual_posts},
        "generated_at": iso(t.generated_at),
    }
