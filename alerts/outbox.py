"""The alert outbox: alerts are rows written with the incident change, then delivered by a worker."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.storage.schema import Incident, IncidentEvent, OutboxMessage


def enqueue(
    session: Session, incident: Incident, event: IncidentEvent, channel: str, target: str,
    kind: str, payload: dict[str, Any], now: datetime,
) -> OutboxMessage:
    """Queue one message for (incident, event, channel, target); queuing it twice is a no-op."""
    session.flush()  # the event needs its id for the idempotency key
    key = f"incident:{incident.id}:event:{event.id}:{channel}:{target}"
    existing = session.scalar(select(OutboxMessage).where(OutboxMessage.idempotency_key == key))
    if existing is not None:
        return existing
    message = OutboxMessage(
        idempotency_key=key, incident_id=incident.id, event_id=event.id, channel=channel, target=target,
        kind=kind, payload=payload, status="pending", attempts=0, created_at=now, next_attempt_at=now,
    )
    session.add(message)
    return message
