"""Which channels hear about an incident event."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from alerts.outbox import enqueue
from alerts.settings import AlertSettings
from monitor.storage.schema import Incident, IncidentEvent, OutboxMessage


def notify(
    session: Session, settings: AlertSettings, incident: Incident, event: IncidentEvent, now: datetime
) -> list[OutboxMessage]:
    """Queue the alerts for one incident event, in the caller's transaction."""
    channel = "slack" if settings.slack_bot_token else "console"
    target = settings.default_channel if channel == "slack" else ""
    payload = {"incident_id": incident.id, "event": event.kind, "brand": incident.brand}
    return [enqueue(session, incident, event, channel, target, event.kind, payload, now)]
