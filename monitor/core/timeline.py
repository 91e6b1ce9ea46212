"""Timelines: the one writer of incident events and post events, and the consumer-side `Notify`.

Every change to an incident (detection, escalation, people's actions, the review queue) goes
through `record_event`, in the change's own transaction. When the change should tell people,
the caller passes a `Notify` (alertmanager's consumer-side interface: `alerts.routing.notifier`
builds the one the daemon wires in), so nothing in core imports the alert channels.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from monitor.core.storage.schema import Incident, IncidentEvent, PostEvent


class Notify(Protocol):
    def __call__(self, session: Session, incident: Incident, event: IncidentEvent, now: datetime) -> object:
        """Queue whatever this event should tell people, in the caller's transaction."""
        ...


def record_event(
    session: Session, incident_id: int, kind: str, actor: str | None, now: datetime,
    data: dict[str, Any] | None = None, *, notify: Notify | None = None,
) -> IncidentEvent:
    """Add one event to an incident's timeline (flushed, so it has its id) and tell `notify` about it."""
    event = IncidentEvent(incident_id=incident_id, at=now, kind=kind, actor=actor, data=data)
    session.add(event)
    session.flush()
    if notify is not None:
        incident = session.get(Incident, incident_id)
        assert incident is not None, f"incident {incident_id} vanished inside its own transaction"
        notify(session, incident, event, now)
    return event


def record_post_event(
    session: Session, post_id: int, kind: str, actor: str | None, now: datetime,
    data: dict[str, Any] | None = None, *, incident_id: int | None = None,
    incident_data: dict[str, Any] | None = None, notify: Notify | None = None,
) -> IncidentEvent | None:
    """Add one event to a post's history and, when the post belongs to an incident, a `post_<kind>`
    event (with `incident_data` added) to that incident's timeline; returns the incident event."""
    session.add(PostEvent(post_id=post_id, at=now, kind=kind, actor=actor, data=data))
    if incident_id is None:
        session.flush()
        return None
    return record_event(session, incident_id, f"post_{kind}", actor, now,
                        {"post_id": post_id, **(data or {}), **(incident_data or {})}, notify=notify)
