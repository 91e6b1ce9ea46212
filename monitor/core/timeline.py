"""Incident timelines: what core asks of whoever tells people about an incident change.

`Notify` is the consumer-side interface (like alertmanager's `Muter`): detection and people's
actions call it with each change, in the change's own transaction; `alerts.routing.notifier`
builds the one the daemon passes in, so nothing below the wiring imports the alert channels.
"""
from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session

from monitor.core.storage.schema import Incident, IncidentEvent


class Notify(Protocol):
    def __call__(self, session: Session, incident: Incident, event: IncidentEvent, now: datetime) -> object:
        """Queue whatever this event should tell people, in the caller's transaction."""
        ...

