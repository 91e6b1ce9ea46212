"""The alert outbox: alerts are rows written with the incident change, then delivered by a worker.

Each row has a unique idempotency key, so queuing the same alert twice (a retried transaction, a job
that runs twice) is a no-op, and the key travels with the message so a resend can be recognised.
Keys: `incident:{id}:event:{event}:{channel}:{target}[:{kind}]`, and for the one parent message of an
incident in a Slack place `incident:{id}:slack:{place}:parent` — unique per (incident, place) in the
database, which is what makes "one incident = one Slack thread" hold even across restarts.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.core.enums import OutboxStatus
from monitor.core.storage.schema import Incident, IncidentEvent, OutboxMessage


def event_key(incident: Incident, event: IncidentEvent, channel: str, target: str, kind: str | None = None) -> str:
    base = f"incident:{incident.id}:event:{event.id}:{channel}:{target}"
    return f"{base}:{kind}" if kind else base


def parent_key(incident_id: int, place: str) -> str:
    return f"incident:{incident_id}:slack:{place}:parent"


def enqueue(
    session: Session, incident: Incident, event: IncidentEvent, channel: str, target: str,
    kind: str, payload: dict[str, Any], now: datetime, key: str | None = None,
) -> OutboxMessage:
    """Queue one message; `key` defaults to one per (incident, event, channel, target). Queuing twice is a no-op."""
    session.flush()  # the incident and event need their ids for the idempotency key
    key = key or event_key(incident, event, channel, target)
    existing = session.scalar(select(OutboxMessage).where(OutboxMessage.idempotency_key == key))
    if existing is not None:
        return existing
    message = OutboxMessage(
        idempotency_key=key, incident_id=incident.id, event_id=event.id, channel=channel, target=target,
        kind=kind, payload=payload, status=OutboxStatus.PENDING, attempts=0, created_at=now, next_attempt_at=now,
    )
    session.add(message)
    return message
