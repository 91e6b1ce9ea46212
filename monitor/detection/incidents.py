"""The incident lifecycle: what the daemon's detect job runs every `detect_interval_seconds`.

Per brand, in one transaction: learn the baseline up to the lag, evaluate the detectors at
`clock.now()` from the buckets (and the recent negative posts, for viral), then

- open an incident when a detector fires and the brand has none active;
- update the active one: a `signal` event when a test starts firing, `severity_changed` when the
  excess of negative posts reaches the next level (severity never goes down), links the posts
  behind firing windows and flags the most visible ones for the customer-service queue;
- merge a brand's younger active incidents into its oldest (one brand, one active incident);
- close it once nothing fires and the widest window is back at or below the baseline
  (`lifecycle`: one burst is one incident, however long it lasts).

"Active" means not closed: an incident someone marked resolved stays the brand's active incident
until detection closes it, so resolving it during a crisis does not open a new one a minute later.

Every change is an incident event with the numbers that caused it, and the alerting ones
(opened, severity up, closed, merged-away) queue their alerts through the `notify` passed in
(`alerts.routing.notifier` in the daemon) in the same transaction. Everything is a function of
the stored data and `now`: running detect again at the same time changes nothing, and a replay
gives the same incidents every time.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from monitor.core.clock import Clock
from monitor.core.enums import EventKind, IncidentStatus
from monitor.core.incidents import close_incident, open_incident, raise_severity
from monitor.core.timeline import Notify, record_event
from monitor.detection import aggregates, baseline_store, calibration
from monitor.detection.aggregates import floor_minute, visibility
from monitor.detection.settings import BrandRules, DetectionSettings
from monitor.detection.signals import Signal
from monitor.detection.lifecycle import back_to_baseline, closing_window, severity_for
from monitor.detection.viral import ENGAGEMENT_GATE, RecentPost, check_viral_posts, post_alpha, velocity
from monitor.detection.windows import BucketRow, detector_share, window_signals
from monitor.core.queue import flag_post
from monitor.core.storage.db import transaction
from monitor.core.storage.schema import (
    FlaggedPost, Incident, IncidentPost, Post, Score, UTCDateTime,
)

log = logging.getLogger("flarewatch.detection")

ACTOR = "detector"
ALERTING = frozenset({EventKind.OPENED, EventKind.SEVERITY_CHANGED, EventKind.CLOSED, EventKind.MERGED})
TOP_POSTS = 10


@dataclass(frozen=True)
class Change:
    """One incident event written by a detect run."""

    incident_id: int
    brand: str
    kind: str
    at: datetime


def detect(
    sessions: sessionmaker[Session], brands: Iterable[BrandRules], settings: DetectionSettings, notify: Notify,
    clock: Clock, claim: Callable[[Session, str], bool] | None = None,
) -> list[Change]:
    """Evaluate these brands at `clock.now()`; one transaction per brand. `notify` hears every alerting change.

    `claim(session, brand)`, when given, runs first in the brand's transaction and skips the brand
    when it answers False: replicas use it to fence a brand's run with its lease (`monitor.core.leases`),
    so one brand is detected by one replica at a time and an incident opens once.
    """
    now = clock.now()
    changes: list[Change] = []
    for brand in brands:
        budget = brand.false_alarms_per_week or settings.false_alarms_per_week
        with transaction(sessions) as session:
            if claim is not None and not claim(session, brand.name):
                continue
            changes += detect_brand(session, brand.name, settings, budget, notify, now)
    return changes


def evaluate(
    session: Session, brand: str, settings: DetectionSettings, false_alarms_per_week: float, now: datetime
) -> list[Signal]:
    """All detectors' signals for the brand at `now` (fired or not; for viral, of the posts that could
    fire: `_viral_candidates`), learning the baseline first."""
    baseline = baseline_store.load(session, brand, now, settings)
    since = floor_minute(now - timedelta(minutes=max(settings.windows_minutes)))
    rows = [BucketRow(m.start, m.negative, m.volume) for m in aggregates.minutes(session, brand, since, now)]
    signals = window_signals(rows, now, baseline, settings, false_alarms_per_week)
    if "viral" in settings.detectors:
        lookback = settings.viral_lookback_minutes
        alpha = post_alpha(false_alarms_per_week, detector_share(settings, "viral"),
                           baseline.rate_per_week("negative"))
        least = _least_engagement_to_fire(baseline.posts, alpha, now)
        posts = _viral_candidates(session, brand, now - timedelta(minutes=lookback), now, least)
        signals += check_viral_posts(posts, baseline.posts, alpha, lookback, now)
    return signals


def detect_brand(
    session: Session, brand: str, settings: DetectionSettings, false_alarms_per_week: float,
    notify: Notify, now: datetime,
) -> list[Change]:
    signals = evaluate(session, brand, settings, false_alarms_per_week, now)
    fired = [s for s in signals if s.fired]
    active_ids = list(session.connection().execute(_ACTIVE, {"brand": brand}).scalars())
    if not active_ids and not fired:
        return []  # the usual quiet tick: no ORM work at all
    active = [session.get(Incident, i) for i in active_ids]
    run = _Run(session, settings, notify, now)
    incident = active[0] if active else None
    for other in active[1:]:
        run.merge(incident, other)  # type: ignore[arg-type]
    if incident is None:
        if fired:
            run.open(brand, signals, fired)
    else:
        run.update(incident, signals, fired)
    return run.changes


_ACTIVE = select(Incident.id).where(Incident.brand == bindparam("brand"), Incident.status != IncidentStatus.CLOSED).order_by(Incident.id)


class _Run:
    """One brand's detect run: writes events, links, flags and alerts in the caller's transaction."""

    def __init__(self, session: Session, settings: DetectionSettings, notify: Notify, now: datetime) -> None:
        self.session, self.settings, self.notify, self.now = session, settings, notify, now
        self.changes: list[Change] = []

    def event(self, incident: Incident, kind: str, data: dict[str, Any], alert: bool | None = None) -> None:
        alerting = (kind in ALERTING) if alert is None else alert
        record_event(self.session, incident.id, kind, ACTOR, self.now, data, notify=self.notify if alerting else None)
        self.changes.append(Change(incident.id, incident.brand, kind, self.now))
        log.info("incident %s (%s): %s", incident.id, incident.brand, kind)

    def open(self, brand: str, signals: list[Signal], fired: list[Signal]) -> Incident:
        started = self.estimated_start(brand, fired)
        posts = self.posts_behind(brand, fired, started)
        excess = _excess(signals)
        severity = severity_for(excess, self.settings.severity_excess_posts)
        only_viral = all(s.detector == "viral" for s in fired)
        incident = open_incident(
            self.session, brand=brand, severity=severity,
            title=f"{brand}: {'a negative post is spreading' if only_viral else 'negative posts are surging'}",
            started_at=started, detail=self.detail({}, signals, fired, excess), now=self.now,
        )
        self.event(incident, "opened", {
            "severity": severity, "signals": [s.as_dict() for s in fired], "top_posts": [p for p, _ in posts[:TOP_POSTS]],
            "sources": self.sources(brand, fired),
        })
        self.attach(incident, posts, fired)
        return incident

    def update(self, incident: Incident, signals: list[Signal], fired: list[Signal]) -> None:
        old = incident.detail or {}
        posts = self.posts_behind(incident.brand, fired, incident.started_at) if fired else []
        top = [p for p, _ in posts[:TOP_POSTS]]
        firing_before = set(old.get("firing", []))
        for signal in fired:
            if signal.key not in firing_before:
                self.event(incident, "signal", {"signal": signal.as_dict(), "top_posts": top})
        excess = max(_excess(signals), float(old.get("peak_excess", 0.0)))
        severity = max(incident.severity, severity_for(excess, self.settings.severity_excess_posts))
        if severity > incident.severity:
            self.event(incident, "severity_changed", {
                "from": incident.severity, "to": severity, "excess": round(excess, 3),
                "signals": [s.as_dict() for s in fired], "top_posts": top,
                "sources": self.sources(incident.brand, fired),
            })
            raise_severity(incident, severity)
        detail = self.detail(old, signals, fired, excess)
        if detail != old:
            incident.detail = detail
            incident.updated_at = self.now
        if posts:
            self.attach(incident, posts, fired)
        closing = closing_window(self.settings.windows_minutes)
        widest = _widest(signals, closing)
        quiet = (self.now - datetime.fromisoformat(detail["last_short_signal_at"])).total_seconds() / 60.0
        if back_to_baseline(bool(fired), _calendar_excess(widest) if widest is not None else 0.0, quiet, closing):
            close_incident(incident, self.now)
            self.event(incident, "closed", {
                "back_to_baseline": widest.as_dict() if widest is not None else None,
                "last_signal_at": detail["last_signal_at"], "severity": incident.severity, "peak": detail.get("peak"),
            })

    def merge(self, into: Incident, other: Incident) -> None:
        """Fold a younger active incident of the same brand into `into`."""
        linked = set(self.session.scalars(select(IncidentPost.post_id).where(IncidentPost.incident_id == into.id)))
        for link in self.session.scalars(
            select(IncidentPost).where(IncidentPost.incident_id == other.id).order_by(IncidentPost.post_id)
        ):
            if link.post_id not in linked:
                self.session.add(IncidentPost(incident_id=into.id, post_id=link.post_id, added_at=self.now))
        self.session.execute(
            update(FlaggedPost).where(FlaggedPost.incident_id == other.id).values(incident_id=into.id)
        )
        into.started_at = min(into.started_at, other.started_at)
        into.severity = max(into.severity, other.severity)
        into.updated_at = self.now
        old = dict(other.detail or {})
        merged_detail = dict(into.detail or {})
        merged_detail["firing"] = sorted(set(merged_detail.get("firing", [])) | set(old.get("firing", [])))
        merged_detail["last_signal_at"] = max(
            filter(None, [merged_detail.get("last_signal_at"), old.get("last_signal_at")]), default=self.now.isoformat())
        merged_detail["merged_from"] = sorted({*merged_detail.get("merged_from", []), other.id})
        into.detail = merged_detail
        close_incident(other, self.now)
        other.detail = {**old, "merged_into": into.id}
        self.event(into, "merged", {"from": other.id, "severity": into.severity}, alert=False)
        self.event(other, "merged", {"into": into.id})

    # -- numbers and posts ----------------------------------------------------------------

    def detail(self, old: dict[str, Any], signals: list[Signal], fired: list[Signal], excess: float) -> dict[str, Any]:
        counted = [s for s in signals if s.detector != "viral"] + [s for s in fired if s.detector == "viral"]
        peak = old.get("peak")
        volume = [s for s in signals if _windowed(s)]
        best = max(volume, key=lambda s: (_beyond(s), -s.window_minutes), default=None)
        if best is not None and _beyond(best) >= float(old.get("peak_excess", float("-inf"))):
            peak = best.as_dict()
        return {
            "firing": sorted(s.key for s in fired),
            "last_signal_at": self.now.isoformat() if fired else old.get("last_signal_at", self.now.isoformat()),
            # the last firing of a test that fits in the closing window (`lifecycle.back_to_baseline`)
            "last_short_signal_at": self.now.isoformat() if any(
                s.detector == "viral" or s.window_minutes <= closing_window(self.settings.windows_minutes)
                for s in fired) else old.get("last_short_signal_at", old.get("last_signal_at", self.now.isoformat())),
            "current": [s.as_dict() for s in counted],
            "peak_excess": round(excess, 3),
            "peak": peak,
        }

    def estimated_start(self, brand: str, fired: list[Signal]) -> datetime:
        """Where the rise began: the change point of the widest firing window (CUSUM).

        Over the window's minutes, S(t) sums observed minus expected negatives; the rise starts
        right after S is lowest, where the excess begins to accumulate. A viral post starts at
        its own creation.
        """
        candidates = [s.window_start for s in fired if s.detector == "viral"]
        windows = [s for s in fired if s.detector != "viral"]
        if windows:
            widest = max(windows, key=lambda s: (s.window_minutes, s.detector))
            per_minute = widest.expected / max((self.now - widest.window_start).total_seconds() / 60.0, 1.0)
            negatives = {m.start: m.negative for m in aggregates.minutes(self.session, brand, widest.window_start, self.now)}
            total = lowest = 0.0
            start = widest.window_start
            minute = widest.window_start
            while minute < self.now:
                total += negatives.get(minute, 0) - per_minute
                if total <= lowest + 1e-9:  # ties: the latest, nearest the rise
                    lowest, start = total, minute + timedelta(minutes=1)
                minute += timedelta(minutes=1)
            candidates.append(min(start, floor_minute(self.now)))
        return min(candidates)

    def posts_behind(self, brand: str, fired: list[Signal], started: datetime) -> list[tuple[int, float]]:
        """(post id, visibility) of the negative posts behind the firing tests since the incident
        started, most visible first."""
        windows = [s for s in fired if s.detector != "viral"]
        found: dict[int, float] = {}
        if windows:
            since = max(min(s.window_start for s in windows), started)
            for pid, reach in _negative_posts(self.session, brand, since, self.now, self.settings.link_posts_max):
                found[pid] = reach
        for signal in fired:
            if signal.detector == "viral":
                post = self.session.get(Post, signal.post_ids[0])
                if post is not None:
                    found[post.id] = visibility(post.author_followers, post.reposts, post.replies)
        ranked = sorted(found.items(), key=lambda item: (-item[1], item[0]))
        return ranked[: self.settings.link_posts_max]

    def sources(self, brand: str, fired: list[Signal]) -> dict[str, dict[str, int]]:
        since = min((s.window_start for s in fired), default=self.now)
        return aggregates.by_source(self.session, brand, floor_minute(since), self.now + timedelta(minutes=1))

    def attach(self, incident: Incident, posts: list[tuple[int, float]], fired: list[Signal]) -> None:
        ids = [p for p, _ in posts]
        linked = set(self.session.scalars(
            select(IncidentPost.post_id).where(IncidentPost.incident_id == incident.id, IncidentPost.post_id.in_(ids))
        )) if ids else set()
        for pid in ids:
            if pid not in linked:
                self.session.add(IncidentPost(incident_id=incident.id, post_id=pid, added_at=self.now))
        viral = {s.post_ids[0] for s in fired if s.detector == "viral"}
        reason = ", ".join(sorted({s.detector for s in fired}))
        # The most visible of the posts new to the incident go to the queue (earlier ones already did).
        fresh = [(pid, reach) for pid, reach in posts if pid not in linked]
        for pid, reach in fresh[: self.settings.flag_posts]:
            flag_post(self.session, post_id=pid, brand=incident.brand,
                      reason=f"incident {incident.id}: {'viral' if pid in viral else reason}",
                      urgency=round(reach * incident.severity, 3), incident_id=incident.id, now=self.now)
        self.session.flush()


def _widest(signals: list[Signal], closing: int) -> Signal | None:
    """The closing window's test (volume first): its excess says whether the burst is over."""
    windows = [s for s in signals if s.detector != "viral" and s.window_minutes <= closing]
    return max(windows, key=lambda s: (s.window_minutes, s.detector == "volume"), default=None)


def _calendar_excess(signal: Signal) -> float:
    """Negatives beyond the brand's calendar, not beyond the activity-scaled expectation that
    decides firing: whether the surge is over (`lifecycle`)."""
    return signal.observed - float(signal.extra.get("calendar_expected", signal.expected))


def _beyond(signal: Signal) -> float:
    """Negative posts beyond what would just fire the window (severity's measure; see `lifecycle`)."""
    return signal.observed - float(signal.extra.get("threshold_count", signal.expected))


def _windowed(signal: Signal) -> bool:
    """A window's volume test (the likelihood-ratio test has no firing count to measure beyond)."""
    return signal.detector == "volume" and "test" not in signal.extra


def _excess(signals: list[Signal]) -> float:
    return max((_beyond(s) for s in signals if _windowed(s)), default=0.0)


# `visibility` is 1 + ln((1 + followers)(1 + engagement)): ranking by the product in SQL brings back
# only the posts that can be linked, not every negative post of a crisis.
_VISIBLE = (1.0 + func.coalesce(Post.author_followers, 0)) * (1.0 + Post.reposts + Post.replies)
_NEGATIVE_POSTS = (
    select(Post.id, Post.created_at, Post.author_followers, Post.reposts, Post.replies)
    .where(Post.brand == bindparam("brand"), Post.duplicate_of.is_(None),
           Post.created_at >= bindparam("since", type_=UTCDateTime()),
           Post.created_at < bindparam("until", type_=UTCDateTime()),
           select(Score.id).where(and_(Score.post_id == Post.id, Score.label == "negative")).exists())
    .order_by(_VISIBLE.desc(), Post.id).limit(bindparam("limit"))
)


def _negative_posts(session: Session, brand: str, since: datetime, until: datetime, limit: int) -> list[tuple[int, float]]:
    """The `limit` most visible negative posts created in [since, until), as (id, visibility)."""
    rows = session.connection().execute(
        _NEGATIVE_POSTS, {"brand": brand, "since": since, "until": until, "limit": limit})
    return [(pid, visibility(f, r, c)) for pid, _, f, r, c in rows]


# The viral check reads at most this many posts per tick (the most engaged of those that can fire),
# so a tick costs the same with 1k or 100k negative posts in the lookback. More than this many
# spreading posts at once is a crisis the count tests already see.
VIRAL_CANDIDATES = 200

_ENGAGEMENT = Post.reposts + Post.replies
_VIRAL_CANDIDATES = (
    select(Post.id, Post.created_at, Post.author_followers, _ENGAGEMENT)
    .where(Post.brand == bindparam("brand"), Post.duplicate_of.is_(None),
           Post.created_at >= bindparam("since", type_=UTCDateTime()),
           Post.created_at < bindparam("until", type_=UTCDateTime()),
           _ENGAGEMENT >= bindparam("least"),
           select(Score.id).where(and_(Score.post_id == Post.id, Score.label == "negative")).exists())
    .order_by(_ENGAGEMENT.desc(), Post.id).limit(VIRAL_CANDIDATES)
)

# An older post copied again within the lookback (ingest stores a re-post as a copy and folds its
# engagement into the original, whatever the original's age) is judged on what its copies there
# brought, counted as ingest counts it (each copy is a repost, plus its own reposts and replies),
# from its first copy there, with the reach of the copy that brought the most (who carries it now).
# One walk of the lookback's copies (`ix_posts_copies_created`: copies only), ranked per original.
_copy = aliased(Post)
_COPY_ENGAGEMENT = 1 + _copy.reposts + _copy.replies
_COPIES = (
    select(_copy.duplicate_of.label("original"), _copy.author_followers.label("followers"),
           func.sum(_COPY_ENGAGEMENT).over(partition_by=_copy.duplicate_of).label("engagement"),
           func.min(_copy.created_at).over(partition_by=_copy.duplicate_of).label("since"),
           func.row_number().over(partition_by=_copy.duplicate_of, order_by=(
               _COPY_ENGAGEMENT.desc(), _copy.created_at, _copy.id)).label("rank"))
    .where(_copy.brand == bindparam("brand"), _copy.duplicate_of.is_not(None),
           _copy.created_at >= bindparam("since", type_=UTCDateTime()),
           _copy.created_at < bindparam("until", type_=UTCDateTime()))
    .subquery()
)
_RESHARED_CANDIDATES = (
    select(Post.id, _COPIES.c.since, _COPIES.c.followers, _COPIES.c.engagement)
    .join(_COPIES, _COPIES.c.original == Post.id)
    .where(_COPIES.c.rank == 1, _COPIES.c.engagement >= bindparam("least"),
           Post.created_at < bindparam("since", type_=UTCDateTime()),  # younger ones are read whole above
           select(Score.id).where(and_(Score.post_id == Post.id, Score.label == "negative")).exists())
    .order_by(_COPIES.c.engagement.desc(), Post.id).limit(VIRAL_CANDIDATES)
)


def _least_engagement_to_fire(histograms: Mapping[str, Sequence[float]], alpha: float, now: datetime) -> int:
    """The least engagement (reposts + replies) with which a post could fire the viral check.

    Below it, the post's engagement tail probability is above both `ENGAGEMENT_GATE` and `alpha`;
    past the gate the combined p is that probability (`viral.combined_p`), so no reach makes it
    fire. Velocity divides by an age of at least an hour, so ln(1 + engagement) bounds it: the
    posts at or above this are a superset of those that can fire, and the check stays exact.
    """
    engagement = histograms.get("engagement") or calibration.blank_histogram("engagement")
    bar = max(ENGAGEMENT_GATE, alpha)

    def may_fire(value: int) -> bool:
        return calibration.histogram_tail(engagement, velocity(value, now, now)) <= bar

    low, high = 0, 1  # the tail is non-increasing in engagement: double, then bisect
    while not may_fire(high):
        if high > 2**53:
            return high  # nothing can fire
        low, high = high, high * 2
    if may_fire(low):
        return low
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if may_fire(middle) else (middle, high)
    return high


def _viral_candidates(session: Session, brand: str, since: datetime, until: datetime, least: int) -> list[RecentPost]:
    """The most engaged negative posts spreading in [since, until] (the tick's own minute included)
    that could fire: those created then, and older ones copied again then. At most
    `VIRAL_CANDIDATES` rows of each, however many negatives or copies the lookback holds."""
    params = {"brand": brand, "since": since, "until": until + timedelta(microseconds=1), "least": least}
    connection = session.connection()
    return [RecentPost(pid, began, followers, int(engagement or 0))  # PostgreSQL sums bigints as numeric
            for query in (_VIRAL_CANDIDATES, _RESHARED_CANDIDATES)
            for pid, began, followers, engagement in connection.execute(query, params)]
