"""What people do to an incident, the same from Slack buttons, the web pages and the CLI.

Each action is one conditional UPDATE (so double clicks and two people clicking at once change the
incident once), an `IncidentEvent` naming the actor, and the alerts that tell the places that already
have the incident (a thread note, and the Slack parent message edited to show the new state), all in
the caller's transaction. A repeated action returns `changed=False` with the reason, not an error.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from alerts.routing import notify
from alerts.settings import AlertSettings
from monitor.core.storage.schema import FlaggedPost, Incident, IncidentEvent, IncidentPost, Post, Silence


class ActionError(Exception):
    """The action cannot be done; the message says why, for the person who asked."""


class IncidentNotFound(ActionError, LookupError):
    pass


@dataclass(frozen=True)
class ActionResult:
    incident_id: int | None
    changed: bool
    message: str
    post_id: int | None = None  # the post a claim is about


def _incident(session: Session, incident_id: int) -> Incident:
    incident = session.get(Incident, incident_id, populate_existing=True)
    if incident is None:
        raise IncidentNotFound(f"incident {incident_id} does not exist")
    return incident


def _record(session: Session, settings: AlertSettings | None, incident: Incident, kind: str, actor: str,
            now: datetime, data: dict[str, Any]) -> IncidentEvent:
    event = IncidentEvent(incident_id=incident.id, at=now, kind=kind, actor=actor, data=data)
    session.add(event)
    session.flush()
    notify(session, settings or AlertSettings(), incident, event, now)
    return event


def _conditional(session: Session, incident_id: int, condition: Any, values: dict[str, Any]) -> bool:
    result = session.execute(
        update(Incident).where(Incident.id == incident_id, condition).values(**values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def acknowledge(session: Session, incident_id: int, actor: str, now: datetime, *,
                settings: AlertSettings | None = None, via: str | None = None) -> ActionResult:
    """Take ownership: stops the escalation climb."""
    won = _conditional(session, incident_id, (Incident.acknowledged_at.is_(None)) & (Incident.status == "open"),
                       {"acknowledged_at": now, "acknowledged_by": actor, "next_escalation_at": None,
                        "updated_at": now})
    incident = _incident(session, incident_id)
    if not won:
        if incident.status != "open":
            return ActionResult(incident_id, False, f"incident {incident_id} is already {incident.status}")
        return ActionResult(incident_id, False, f"incident {incident_id} was already acknowledged by "
                                                f"{incident.acknowledged_by}")
    _record(session, settings, incident, "acknowledged", actor, now, {"via": via} if via else {})
    return ActionResult(incident_id, True, f"incident {incident_id} acknowledged by {actor}")


def snooze(session: Session, incident_id: int, actor: str, until: datetime, now: datetime, *,
           settings: AlertSettings | None = None, via: str | None = None) -> ActionResult:
    """Mute the incident's alerts and pause its escalation until `until`.

    If it is still unacknowledged then, escalation resumes (`escalate_due` re-alerts the current level).
    """
    if until <= now:
        raise ActionError("a snooze must end in the future")
    incident = _incident(session, incident_id)
    if incident.status != "open":
        return ActionResult(incident_id, False, f"incident {incident_id} is already {incident.status}")
    values: dict[str, Any] = {"snoozed_until": until, "updated_at": now}
    if incident.acknowledged_at is None:
        values["next_escalation_at"] = until
    _conditional(session, incident_id, Incident.status == "open", values)
    incident = _incident(session, incident_id)
    data = {"until": until.isoformat(timespec="minutes"), **({"via": via} if via else {})}
    _record(session, settings, incident, "snoozed", actor, now, data)
    return ActionResult(incident_id, True, f"incident {incident_id} snoozed until {until:%Y-%m-%d %H:%M} UTC")


def resolve(session: Session, incident_id: int, actor: str, now: datetime, *,
            settings: AlertSettings | None = None, via: str | None = None) -> ActionResult:
    """Mark the incident handled: stops escalation and all further alerting for it."""
    won = _conditional(session, incident_id, Incident.status == "open",
                       {"status": "resolved", "closed_at": now, "next_escalation_at": None, "updated_at": now})
    incident = _incident(session, incident_id)
    if not won:
        return ActionResult(incident_id, False, f"incident {incident_id} is already {incident.status}")
    _record(session, settings, incident, "resolved", actor, now, {"via": via} if via else {})
    return ActionResult(incident_id, True, f"incident {incident_id} resolved by {actor}")


def silence(session: Session, brand: str, until: datetime, actor: str, reason: str, now: datetime, *,
            settings: AlertSettings | None = None) -> Silence:
    """Mute every alert about `brand` until `until` (recorded, and noted on its open incidents)."""
    if until <= now:
        raise ActionError("a silence must end in the future")
    row = Silence(brand=brand, until=until, created_by=actor, created_at=now, reason=reason)
    session.add(row)
    session.flush()
    for incident in session.scalars(select(Incident).where(Incident.brand == brand, Incident.status == "open")):
        _record(session, settings, incident, "silenced", actor, now,
                {"until": until.isoformat(timespec="minutes"), "reason": reason, "silence_id": row.id})
    return row


def claim_top_post(session: Session, incident_id: int, actor: str, now: datetime, minutes: float, *,
                   post_id: int | None = None, settings: AlertSettings | None = None,
                   via: str | None = None) -> ActionResult:
    """Claim the incident's most urgent open queue item (or `post_id`) for `actor` to answer."""
    from monitor.core import queue

    incident = _incident(session, incident_id)
    if post_id is None:
        post_id = session.scalar(
            select(FlaggedPost.post_id)
            .where(FlaggedPost.incident_id == incident_id, FlaggedPost.state == "open")
            .order_by(FlaggedPost.urgency.desc(), FlaggedPost.post_id).limit(1)
        )
    elif session.get(IncidentPost, (incident_id, post_id)) is None:
        raise ActionError(f"post {post_id} is not part of incident {incident_id}")
    if post_id is None:
        return ActionResult(incident_id, False, f"incident {incident_id} has no open posts to claim")
    try:
        won = queue.claim(session, post_id, actor, now, minutes)
    except queue.QueueError as exc:
        return ActionResult(incident_id, False, str(exc))
    if not won:
        holder = session.scalar(select(FlaggedPost.claimed_by).where(FlaggedPost.post_id == post_id))
        return ActionResult(incident_id, False, f"post {post_id} is already claimed by {holder}", post_id)
    # monitor.core.queue put the claim on the incident's timeline; tell the incident's places about that event.
    event = session.scalar(
        select(IncidentEvent)
        .where(IncidentEvent.kind == "post_claimed", IncidentEvent.actor == actor, IncidentEvent.at == now)
        .order_by(IncidentEvent.id.desc()).limit(1)
    )
    post = session.get(Post, post_id)
    extra = {"author": post.author if post else "?", **({"via": via} if via else {})}
    if event is None or event.incident_id != incident_id:
        _record(session, settings, incident, "post_claimed", actor, now, {"post_id": post_id, **extra})
    else:
        event.data = {**(event.data or {}), **extra}  # the thread note names the post's author
        notify(session, settings or AlertSettings(), incident, event, now)
    return ActionResult(incident_id, True, f"post {post_id} claimed by {actor} for {minutes:g} min", post_id)


def snooze_for(session: Session, incident_id: int, actor: str, minutes: float, now: datetime,
               **kwargs: Any) -> ActionResult:
    return snooze(session, incident_id, actor, now + timedelta(minutes=minutes), now, **kwargs)
