"""Response figures: how fast an incident was seen and handled, per incident and per brand and week.

Milestones of an incident (None when it did not happen):

- estimated start: `incidents.started_at` (detection's change point of the rise);
- detected: `incidents.opened_at`;
- first alert: when the first alert reached someone: the earliest `sent_at` of the incident's outbox
  rows. Only delivered alerts count: an incident whose alerts are queued or failed has none (and
  `alerts_failed` says how many failed, `first_alert_failed_at` when the first did), like one that
  was never alerted (silenced, no targets);
- acknowledged: `incidents.acknowledged_at`;
- first answer: the earliest `answered_at` of the incident's flagged posts in state `answered`
  (dismissals do not count);
- resolved: the first `resolved` (a person) or `closed` (detection) event, else `closed_at`.

Durations: time to detect runs from the estimated start to the first alert (so delivery delay
counts: that is when people learn of it). Time to acknowledge, to first answer and to resolve run
from the first alert, or from detection when the incident was never alerted.
"""
from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.core.storage.schema import FlaggedPost, Incident, IncidentEvent, OutboxMessage

RESOLVING_KINDS = ("resolved", "closed")


@dataclass(frozen=True)
class PostCounts:
    flagged: int = 0
    answered: int = 0
    dismissed: int = 0
    claimed: int = 0
    unclaimed: int = 0
    by_agent: dict[str, int] = field(default_factory=dict)  # answered posts per agent

    @property
    def share_answered(self) -> float | None:
        return self.answered / self.flagged if self.flagged else None

    @property
    def per_agent(self) -> float | None:
        """Answered posts per agent who answered any."""
        return self.answered / len(self.by_agent) if self.by_agent else None


@dataclass(frozen=True)
class IncidentFigures:
    incident_id: int
    brand: str
    severity: int
    started_at: datetime
    detected_at: datetime
    first_alert_at: datetime | None  # the first *delivered* alert
    first_alert_delivered: bool
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    first_answer_at: datetime | None
    resolved_at: datetime | None
    escalations: int
    max_level: int
    posts: PostCounts
    alerts_failed: int = 0  # outbox rows that could not be delivered
    first_alert_failed_at: datetime | None = None
    resolved_by: str | None = None  # who resolved it; None when detection closed it (or nobody yet)
    closed_by_itself: bool = False  # detection closed it after its quiet minutes: nobody resolved it

    @property
    def response_start(self) -> datetime:
        """Where the response clock starts: the first alert, else detection."""
        return self.first_alert_at or self.detected_at

    @property
    def detection_delay(self) -> timedelta:
        return self.detected_at - self.started_at

    @property
    def time_to_detect(self) -> timedelta | None:
        return None if self.first_alert_at is None else self.first_alert_at - self.started_at

    @property
    def time_to_acknowledge(self) -> timedelta | None:
        return _since(self.acknowledged_at, self.response_start)

    @property
    def time_to_first_answer(self) -> timedelta | None:
        return _since(self.first_answer_at, self.response_start)

    @property
    def time_to_resolve(self) -> timedelta | None:
        """Only for incidents a person resolved: one that closed by itself was not resolved by anyone."""
        return None if self.closed_by_itself else _since(self.resolved_at, self.response_start)

    @property
    def time_to_close(self) -> timedelta | None:
        """From the first alert to the end, however it ended."""
        return _since(self.resolved_at, self.response_start)


def _since(when: datetime | None, start: datetime) -> timedelta | None:
    return None if when is None else max(when - start, timedelta(0))


def incident_figures(session: Session, incident_id: int) -> IncidentFigures | None:
    found = figures_for(session, [incident_id])
    return found[0] if found else None


def figures_for(session: Session, incident_ids: Sequence[int]) -> list[IncidentFigures]:
    """Figures of these incidents (missing ids are left out), in a handful of queries whatever their number."""
    ids = list(dict.fromkeys(incident_ids))
    if not ids:
        return []
    incidents = {i.id: i for i in session.scalars(select(Incident).where(Incident.id.in_(ids)))}
    sent = dict(session.execute(
        select(OutboxMessage.incident_id, func.min(OutboxMessage.sent_at))
        .where(OutboxMessage.incident_id.in_(ids), OutboxMessage.sent_at.is_not(None))
        .group_by(OutboxMessage.incident_id)).all())
    failed: dict[int, int] = dict(session.execute(  # type: ignore[arg-type]
        select(OutboxMessage.incident_id, func.count())
        .where(OutboxMessage.incident_id.in_(ids), OutboxMessage.status == "failed")
        .group_by(OutboxMessage.incident_id)).all())
    first_failure = dict(session.execute(
        select(IncidentEvent.incident_id, func.min(IncidentEvent.at))
        .where(IncidentEvent.incident_id.in_(ids), IncidentEvent.kind == "alert_failed")
        .group_by(IncidentEvent.incident_id)).all())
    resolved: dict[int, tuple[datetime, str, str | None]] = {}
    escalations: Counter[int] = Counter()
    max_level: dict[int, int] = {}
    for incident_id, kind, at, data, actor in session.execute(
        select(IncidentEvent.incident_id, IncidentEvent.kind, IncidentEvent.at, IncidentEvent.data, IncidentEvent.actor)
        .where(IncidentEvent.incident_id.in_(ids), IncidentEvent.kind.in_([*RESOLVING_KINDS, "escalated"]))
        .order_by(IncidentEvent.at, IncidentEvent.id)
    ):
        if kind == "escalated":
            escalations[incident_id] += 1
            level = (data or {}).get("level")
            if isinstance(level, int):
                max_level[incident_id] = max(max_level.get(incident_id, 0), level)
        else:
            resolved.setdefault(incident_id, (at, kind, actor))
    posts = _post_counts(session, ids)
    out = []
    for incident_id in ids:
        incident = incidents.get(incident_id)
        if incident is None:
            continue
        first_sent = _aware(sent.get(incident_id))
        closed = incident.closed_at if incident.status in RESOLVING_KINDS else None
        end_at, end_kind, end_actor = resolved.get(incident_id, (closed, incident.status, None))
        out.append(IncidentFigures(
            incident_id=incident.id, brand=incident.brand, severity=incident.severity,
            started_at=incident.started_at, detected_at=incident.opened_at,
            first_alert_at=first_sent, first_alert_delivered=first_sent is not None,
            acknowledged_at=incident.acknowledged_at, acknowledged_by=incident.acknowledged_by,
            first_answer_at=posts[incident_id][1], resolved_at=end_at,
            resolved_by=end_actor if end_kind == "resolved" else None,
            closed_by_itself=end_at is not None and end_kind == "closed",
            escalations=escalations[incident_id], max_level=max(max_level.get(incident_id, 0), incident.escalation_level),
            posts=posts[incident_id][0], alerts_failed=failed.get(incident_id, 0),
            first_alert_failed_at=_aware(first_failure.get(incident_id)),
        ))
    return out


def _aware(value: datetime | None) -> datetime | None:
    """Aggregates (min) bypass the column type on some backends: make them aware UTC again."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


def _post_counts(session: Session, ids: list[int]) -> dict[int, tuple[PostCounts, datetime | None]]:
    # keyed as the column is typed (nullable); the rows read are those of `ids`
    states: dict[int | None, Counter[str]] = {i: Counter() for i in ids}
    agents: dict[int | None, Counter[str]] = {i: Counter() for i in ids}
    first_answer: dict[int | None, datetime] = {}
    for incident_id, state, who, answered_at in session.execute(
        select(FlaggedPost.incident_id, FlaggedPost.state, FlaggedPost.claimed_by, FlaggedPost.answered_at)
        .where(FlaggedPost.incident_id.in_(ids))
    ):
        states[incident_id][state] += 1
        if state == "answered":
            agents[incident_id][who or "?"] += 1
            if answered_at is not None and (incident_id not in first_answer or answered_at < first_answer[incident_id]):
                first_answer[incident_id] = answered_at
    return {
        i: (PostCounts(flagged=sum(states[i].values()), answered=states[i]["answered"],
                       dismissed=states[i]["dismissed"], claimed=states[i]["claimed"], unclaimed=states[i]["open"],
                       by_agent=dict(sorted(agents[i].items()))), first_answer.get(i))
        for i in ids
    }


# -- per brand and week ---------------------------------------------------------------------------

DURATIONS = ("time_to_detect", "time_to_acknowledge", "time_to_first_answer", "time_to_resolve")


def week_start(when: datetime) -> datetime:
    """Monday 00:00 UTC of the ISO week containing `when`."""
    day = when.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


@dataclass(frozen=True)
class WeekFigures:
    """One brand's incidents opened in one ISO week, with medians of their durations."""

    brand: str
    week: datetime  # Monday 00:00 UTC
    incidents: int
    acknowledged: int
    medians: dict[str, timedelta | None]  # DURATIONS -> median over the incidents that reached it
    posts: PostCounts
    # Change against the previous week: durations in seconds (negative = faster), the answered share in
    # points of share; None when either week lacks the figure.
    trend: dict[str, float | None]

    @property
    def label(self) -> str:
        year, week, _ = self.week.isocalendar()
        return f"{year}-W{week:02d}"


def _median(values: Iterable[timedelta | None]) -> timedelta | None:
    seconds = [v.total_seconds() for v in values if v is not None]
    return timedelta(seconds=statistics.median(seconds)) if seconds else None


def _merge_posts(counts: Iterable[PostCounts]) -> PostCounts:
    total: Counter[str] = Counter()
    agents: Counter[str] = Counter()
    for c in counts:
        total.update(flagged=c.flagged, answered=c.answered, dismissed=c.dismissed, claimed=c.claimed,
                     unclaimed=c.unclaimed)
        agents.update(c.by_agent)
    return PostCounts(flagged=total["flagged"], answered=total["answered"], dismissed=total["dismissed"],
                      claimed=total["claimed"], unclaimed=total["unclaimed"], by_agent=dict(sorted(agents.items())))


def weekly_figures(session: Session, brand: str | None, weeks: int, now: datetime) -> list[WeekFigures]:
    """The last `weeks` ISO weeks (the current one included, oldest first) for one brand or every
    brand with incidents, with each week's trend against the week before it."""
    if weeks < 1:
        raise ValueError("weeks must be at least 1")
    first = week_start(now) - timedelta(weeks=weeks)  # one more week than shown: the first trend needs it
    query = select(Incident.id, Incident.brand, Incident.opened_at).where(Incident.opened_at >= first)
    if brand is not None:
        query = query.where(Incident.brand == brand)
    rows = session.execute(query.order_by(Incident.opened_at, Incident.id)).all()
    figures = {f.incident_id: f for f in figures_for(session, [r[0] for r in rows])}
    brands = [brand] if brand is not None else sorted({r[1] for r in rows})
    out: list[WeekFigures] = []
    for name in brands:
        previous: WeekFigures | None = None
        for n in range(weeks + 1):
            start = first + timedelta(weeks=n)
            mine = [figures[r[0]] for r in rows if r[1] == name and start <= r[2] < start + timedelta(weeks=1)]
            week = _week(name, start, mine, previous)
            if n > 0:
                out.append(week)
            previous = week
    return out


def _week(brand: str, start: datetime, incidents: list[IncidentFigures], previous: WeekFigures | None) -> WeekFigures:
    medians = {name: _median(getattr(f, name) for f in incidents) for name in DURATIONS}
    posts = _merge_posts(f.posts for f in incidents)
    trend: dict[str, float | None] = {}
    for name in DURATIONS:
        before = previous.medians[name] if previous else None
        now_value = medians[name]
        trend[name] = None if before is None or now_value is None else (now_value - before).total_seconds()
    share, before_share = posts.share_answered, previous.posts.share_answered if previous else None
    trend["share_answered"] = None if share is None or before_share is None else share - before_share
    trend["incidents"] = None if previous is None else float(len(incidents) - previous.incidents)
    return WeekFigures(brand=brand, week=start, incidents=len(incidents),
                       acknowledged=sum(1 for f in incidents if f.acknowledged_at is not None),
                       medians=medians, posts=posts, trend=trend)


def format_duration(value: timedelta | float | None) -> str:
    """`1h 05m`, `4m 30s`, `12s`; a signed float of seconds gets a sign (for trends); None is '—'."""
    if value is None:
        return "—"
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    sign = "-" if seconds < 0 else ("+" if isinstance(value, float) and seconds > 0 else "")
    s = int(round(abs(seconds)))
    days, rest = divmod(s, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        text = f"{days}d {hours:02d}h"
    elif hours:
        text = f"{hours}h {minutes:02d}m"
    elif minutes:
        text = f"{minutes}m {secs:02d}s"
    else:
        text = f"{secs}s"
    return sign + text


def format_share(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"
