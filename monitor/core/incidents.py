"""Incidents: their lifecycle writes and how they are read.

Detection decides when an incident opens, changes severity or closes; the writes are here
(`open_incident`, `raise_severity`, `close_incident`). The read side (`get_incident`,
`list_incidents`, `incident_events`) serves the API, the pages, reports and replay. What people do
to an incident (acknowledge, snooze, resolve, silence, claim) is `alerts.actions`, which raises
the errors defined here.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from monitor.core.enums import IncidentStatus
from monitor.core.storage.schema import Incident, IncidentEvent


class ActionError(Exception):
    """The action cannot be done; the message says why, for the person who asked."""


class IncidentNotFound(ActionError, LookupError):
    pass


# -- lifecycle (detection decides when) ----------------------------------------------------------


def open_incident(session: Session, *, brand: str, severity: int, title: str, started_at: datetime,
                  detail: dict[str, Any], now: datetime) -> Incident:
    """A new open incident (flushed, so it has its id); its `opened` event is the caller's to record."""
    incident = Incident(brand=brand, status=IncidentStatus.OPEN, severity=severity, escalation_level=0, title=title,
                        started_at=started_at, opened_at=now, updated_at=now, detail=detail)
    session.add(incident)
    session.flush()
    return incident


def raise_severity(incident: Incident, severity: int) -> None:
    """Severity only goes up while an incident lasts."""
    incident.severity = max(incident.severity, severity)


def close_incident(incident: Incident, now: datetime) -> None:
    incident.status, incident.closed_at, incident.updated_at = IncidentStatus.CLOSED, now, now


# -- reading ----------------------------------------------------------------------------------------


def get_incident(session: Session, incident_id: int) -> Incident:
    """The incident, or IncidentNotFound."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise IncidentNotFound(f"incident {incident_id} does not exist")
    return incident


def _incidents(brand: str | None, status: str | None) -> Select[Incident]:
    query = select(Incident)
    if brand:
        query = query.where(Incident.brand == brand)
    if status:
        query = query.where(Incident.status == status)
    return query


def list_incidents(session: Session, *, brand: str | None = None, status: str | None = None,
                   limit: int = 200, offset: int = 0) -> list[Incident]:
    """Incidents newest first, one page of them."""
    query = _incidents(brand, status).order_by(Incident.opened_at.desc(), Incident.id.desc())
    return list(session.scalars(query.limit(limit).offset(offset)))


def count_incidents(session: Session, *, brand: str | None = None, status: str | None = None) -> int:
    return session.scalar(select(func.count()).select_from(_incidents(brand, status).subquery())) or 0


def incident_events(session: Session, incident_id: int, *, limit: int | None = None,
                    offset: int = 0) -> list[IncidentEvent]:
    """An incident's timeline, oldest first (all of it, or one page)."""
    query = (select(IncidentEvent).where(IncidentEvent.incident_id == incident_id)
             .order_by(IncidentEvent.at, IncidentEvent.id))
    return list(session.scalars(query.limit(limit).offset(offset)))


def count_events(session: Session, incident_id: int) -> int:
    return session.scalar(select(func.count(IncidentEvent.id)).where(IncidentEvent.incident_id == incident_id)) or 0
