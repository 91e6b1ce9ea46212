"""Alert health as state: what the outbox says about delivery, per incident and overall.

A refused or failed delivery is written on the incident's timeline (`alert_failed`, and
`alert_retrying` when a place first stops answering), once per place until a message reaches it
again, so the timeline tells the story without one line per retry. The incident's alert state
(`incident_alerts`) and the overall one (`delivery_problems`, read by /healthz) are computed from
the outbox rows, so every process (and replica) sees the same thing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.core.enums import OutboxStatus
from monitor.core.storage.schema import IncidentEvent, OutboxMessage
from monitor.core.timeline import record_event

FAILED_EVENT = "alert_failed"
RETRYING_EVENT = "alert_retrying"
DELIVERY_EVENTS = (FAILED_EVENT, RETRYING_EVENT)
STUCK_AFTER = timedelta(minutes=5)  # an alert still unsent after this long means its channel is not answering
LOOKBACK = timedelta(days=7)  # failures older than this no longer make the daemon "degraded"
MAX_ERROR = 300


def place(channel: str, target: str) -> str:
    return f"{channel} {target}".strip()


def record_delivery_problem(session: Session, message: OutboxMessage, error: str, permanent: bool,
                            now: datetime) -> IncidentEvent | None:
    """Note on the incident's timeline that an alert failed (or is being retried), once per place and outage.

    Runs in the transaction that records the outcome on the outbox row. These events are not
    alerted themselves: the place that failed is the one that would be told.
    """
    if message.incident_id is None:
        return None
    kind = FAILED_EVENT if permanent else RETRYING_EVENT
    last_ok = session.scalar(
        select(func.max(OutboxMessage.sent_at))
        .where(OutboxMessage.incident_id == message.incident_id, OutboxMessage.channel == message.channel,
               OutboxMessage.target == message.target, OutboxMessage.status == OutboxStatus.SENT))
    earlier = session.scalars(
        select(IncidentEvent)
        .where(IncidentEvent.incident_id == message.incident_id, IncidentEvent.kind.in_((kind,)))
        .order_by(IncidentEvent.id.desc()))
    for event in earlier:
        data = event.data or {}
        if data.get("channel") == message.channel and data.get("target") == message.target:
            if last_ok is None or event.at >= last_ok:
                return None  # already said, and nothing reached that place since
            break
    return record_event(session, message.incident_id, kind, None, now, {
        "channel": message.channel, "target": message.target, "error": error[:MAX_ERROR],
        "message_id": message.id, "attempts": message.attempts})


@dataclass(frozen=True)
class Problem:
    channel: str
    target: str
    status: str  # failed | pending (being retried, or waiting too long)
    error: str | None
    since: datetime

    @property
    def place(self) -> str:
        return place(self.channel, self.target)

    def as_dict(self) -> dict[str, Any]:
        return {"channel": self.channel, "target": self.target, "status": self.status, "error": self.error,
                "since": self.since.isoformat()}


@dataclass(frozen=True)
class IncidentAlerts:
    """How an incident's alerts fared: `state` is failed, retrying, pending, delivered or none."""

    state: str
    delivered: int = 0
    pending: int = 0
    failed: int = 0
    first_delivered_at: datetime | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def failing(self) -> bool:
        return self.state in ("failed", "retrying")

    def summary(self) -> str:
        if self.state == "none":
            return "no alerts were sent for this incident"
        if not self.problems:
            return {"delivered": f"{self.delivered} delivered",
                    "pending": f"{self.pending} waiting to be sent"}.get(self.state, self.state)
        lines = [f"{p.place}: {p.error or 'not sent yet'}" for p in self.problems]
        verb = "could not be delivered" if self.state == "failed" else "are being retried"
        return f"{self.failed + self.pending} alert(s) {verb} ({'; '.join(lines)})"


def incident_alerts(session: Session, incident_id: int) -> IncidentAlerts:
    rows = session.execute(
        select(OutboxMessage.channel, OutboxMessage.target, OutboxMessage.status, OutboxMessage.last_error,
               OutboxMessage.created_at, OutboxMessage.sent_at)
        .where(OutboxMessage.incident_id == incident_id).order_by(OutboxMessage.id)).all()
    if not rows:
        return IncidentAlerts("none")
    delivered = [r for r in rows if r.status == OutboxStatus.SENT]
    failed = [r for r in rows if r.status == OutboxStatus.FAILED]
    pending = [r for r in rows if r.status in (OutboxStatus.PENDING, OutboxStatus.SENDING)]
    problems: dict[tuple[str, str], Problem] = {}
    for r in [*failed, *(r for r in pending if r.last_error)]:
        problems.setdefault((r.channel, r.target), Problem(r.channel, r.target, r.status, r.last_error, r.created_at))
    state = ("failed" if failed else "retrying" if problems else "pending" if pending else "delivered")
    first = min((r.sent_at for r in delivered if r.sent_at), default=None)
    return IncidentAlerts(state, len(delivered), len(pending), len(failed), first, list(problems.values()))


def incidents_alerts(session: Session, incident_ids: list[int]) -> dict[int, str]:
    """Just the alert state of many incidents (for lists), in one query."""
    out: dict[int, str] = {}
    if not incident_ids:
        return out
    rows = session.execute(
        select(OutboxMessage.incident_id, OutboxMessage.status, func.count(), func.max(OutboxMessage.last_error))
        .where(OutboxMessage.incident_id.in_(incident_ids))
        .group_by(OutboxMessage.incident_id, OutboxMessage.status)).all()
    by: dict[int | None, dict[str, tuple[int, str | None]]] = {}  # the column is nullable; these rows have one
    for incident_id, status, count, error in rows:
        by.setdefault(incident_id, {})[status] = (count, error)
    for incident_id in incident_ids:
        statuses = by.get(incident_id, {})
        waiting = [statuses[s] for s in ("pending", "sending") if s in statuses]
        out[incident_id] = ("none" if not statuses else "failed" if "failed" in statuses
                            else "retrying" if any(e for _, e in waiting) else "pending" if waiting else "delivered")
    return out


def delivery_problems(session: Session, now: datetime) -> list[Problem]:
    """Places whose latest finished alert failed, and alerts stuck unsent for more than STUCK_AFTER.

    A place recovers as soon as a later alert to it is delivered, so fixing a token clears it.
    """
    since = now - LOOKBACK
    latest: dict[tuple[str, str], dict[str, int]] = {}
    for channel, target, status, last_id in session.execute(
        select(OutboxMessage.channel, OutboxMessage.target, OutboxMessage.status, func.max(OutboxMessage.id))
        .where(OutboxMessage.status.in_((OutboxStatus.SENT, OutboxStatus.FAILED)), OutboxMessage.created_at >= since)
        .group_by(OutboxMessage.channel, OutboxMessage.target, OutboxMessage.status)):
        latest.setdefault((channel, target), {})[status] = last_id
    failed_ids = [ids["failed"] for ids in latest.values() if ids.get("failed", 0) > ids.get("sent", 0)]
    problems: dict[tuple[str, str], Problem] = {}
    if failed_ids:
        for row in session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(failed_ids))):
            problems[(row.channel, row.target)] = Problem(row.channel, row.target, "failed", row.last_error,
                                                          row.sent_at or row.next_attempt_at or row.created_at)
    for row in session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.status.in_((OutboxStatus.PENDING, OutboxStatus.SENDING)), OutboxMessage.created_at < now - STUCK_AFTER)
        .order_by(OutboxMessage.id).limit(200)):
        problems.setdefault((row.channel, row.target), Problem(row.channel, row.target, "pending", row.last_error,
                                                               row.created_at))
    return list(problems.values())


def outbox_counts(session: Session) -> dict[tuple[str, str], int]:
    """Outbox rows per (channel, status): the /metrics alert counters."""
    return {(channel, status): count for channel, status, count in session.execute(
        select(OutboxMessage.channel, OutboxMessage.status, func.count()).group_by(OutboxMessage.channel,
                                                                                   OutboxMessage.status))}
