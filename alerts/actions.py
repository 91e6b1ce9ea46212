"""What people do to an incident, the same from Slack buttons, the web pages, the REST API and the CLI.

Every surface authenticates the person and calls `perform` with an `IncidentAction`: it checks the
role (`REQUIRED_ROLE`: managers and admins change incidents; agents may only claim posts) and that
the actor is an active user, then runs the action. So the rules are the same everywhere.

Each action is one conditional UPDATE (so double clicks and two people clicking at once change the
incident once), an `IncidentEvent` naming the actor, and the alerts that tell the places that already
have the incident (a thread note, and the Slack parent message edited to show the new state), all in
the caller's transaction. A repeated action returns `changed=False` with the reason, not an error.
"""
from __future__ import annotations

from dataclasses import dataclass
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.routing import notifier, start_escalation
from alerts.settings import AlertSettings
from monitor.core import queue
from monitor.core.accounts import get_user, has_role
from monitor.core.incidents import ActionError, IncidentNotFound
from monitor.core.storage.db import update_if
from monitor.core.storage.schema import FlaggedPost, Incident, IncidentPost, Post, Silence, User
from monitor.core.timeline import Notify, record_event


class ActionForbidden(ActionError, PermissionError):
    """The actor may not do this (unknown, deactivated, or without the role)."""


class ActionInvalid(ActionError, ValueError):
    """The request itself is wrong (a time in the past, an unknown brand or user, an empty note)."""


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


def _notify(settings: AlertSettings | None) -> Notify:
    return notifier(settings or AlertSettings())


def _conditional(session: Session, incident_id: int, condition: Any, values: dict[str, Any]) -> bool:
    return update_if(session, Incident, Incident.id == incident_id, condition, **values)


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
    record_event(session, incident.id, "acknowledged", actor, now, {"via": via} if via else {}, notify=_notify(settings))
    return ActionResult(incident_id, True, f"incident {incident_id} acknowledged by {actor}")


def snooze(session: Session, incident_id: int, actor: str, until: datetime, now: datetime, *,
           settings: AlertSettings | None = None, via: str | None = None) -> ActionResult:
    """Mute the incident's alerts and pause its escalation until `until`.

    If it is still unacknowledged then, escalation resumes (`escalate_due` re-alerts the current level).
    """
    if until <= now:
        raise ActionInvalid("a snooze must end in the future")
    incident = _incident(session, incident_id)
    if incident.status != "open":
        return ActionResult(incident_id, False, f"incident {incident_id} is already {incident.status}")
    values: dict[str, Any] = {"snoozed_until": until, "updated_at": now}
    if incident.acknowledged_at is None:
        values["next_escalation_at"] = until
    _conditional(session, incident_id, Incident.status == "open", values)
    incident = _incident(session, incident_id)
    data = {"until": until.isoformat(timespec="minutes"), **({"via": via} if via else {})}
    record_event(session, incident.id, "snoozed", actor, now, data, notify=_notify(settings))
    return ActionResult(incident_id, True, f"incident {incident_id} snoozed until {until:%Y-%m-%d %H:%M} UTC")


def resolve(session: Session, incident_id: int, actor: str, now: datetime, *,
            settings: AlertSettings | None = None, via: str | None = None) -> ActionResult:
    """Mark the incident handled: stops escalation and all further alerting for it."""
    won = _conditional(session, incident_id, Incident.status == "open",
                       {"status": "resolved", "closed_at": now, "next_escalation_at": None, "updated_at": now})
    incident = _incident(session, incident_id)
    if not won:
        return ActionResult(incident_id, False, f"incident {incident_id} is already {incident.status}")
    record_event(session, incident.id, "resolved", actor, now, {"via": via} if via else {}, notify=_notify(settings))
    return ActionResult(incident_id, True, f"incident {incident_id} resolved by {actor}")


def silence(session: Session, brand: str, until: datetime, actor: str, reason: str, now: datetime, *,
            settings: AlertSettings | None = None) -> Silence:
    """Mute every alert about `brand` until `until` (recorded, and noted on its open incidents)."""
    if until <= now:
        raise ActionInvalid("a silence must end in the future")
    row = Silence(brand=brand, until=until, created_by=actor, created_at=now, reason=reason)
    session.add(row)
    session.flush()
    for incident in session.scalars(select(Incident).where(Incident.brand == brand, Incident.status == "open")):
        record_event(session, incident.id, "silenced", actor, now,
                     {"until": until.isoformat(timespec="minutes"), "reason": reason, "silence_id": row.id},
                     notify=_notify(settings))
    return row


def claim_top_post(session: Session, incident_id: int, actor: str, now: datetime, minutes: float, *,
                   post_id: int | None = None, settings: AlertSettings | None = None,
                   via: str | None = None) -> ActionResult:
    """Claim the incident's most urgent open queue item (or `post_id`) for `actor` to answer."""
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
    post = session.get(Post, post_id)
    extra = {"author": post.author if post else "?", **({"via": via} if via else {})}  # the thread note names the author
    notify = _notify(settings)
    # The queue puts the claim on the timeline of the incident the post was flagged for: when that is
    # this incident, that event is the one to tell people about; otherwise this incident gets its own.
    ours = session.scalar(select(FlaggedPost.incident_id).where(FlaggedPost.post_id == post_id)) == incident_id
    try:
        won = queue.claim(session, post_id, actor, now, minutes,
                          incident_data=extra if ours else None, notify=notify if ours else None)
    except queue.QueueError as exc:
        return ActionResult(incident_id, False, str(exc))
    if not won:
        holder = session.scalar(select(FlaggedPost.claimed_by).where(FlaggedPost.post_id == post_id))
        return ActionResult(incident_id, False, f"post {post_id} is already claimed by {holder}", post_id)
    if not ours:
        record_event(session, incident.id, "post_claimed", actor, now, {"post_id": post_id, **extra}, notify=notify)
    return ActionResult(incident_id, True, f"post {post_id} claimed by {actor} for {minutes:g} min", post_id)


def snooze_for(session: Session, incident_id: int, actor: str, minutes: float, now: datetime,
               **kwargs: Any) -> ActionResult:
    return snooze(session, incident_id, actor, now + timedelta(minutes=minutes), now, **kwargs)


def reopen(session: Session, incident_id: int, actor: str, now: datetime, *,
           settings: AlertSettings | None = None, via: str | None = None) -> ActionResult:
    """Open a resolved or closed incident again; unacknowledged, its escalation clock restarts."""
    won = _conditional(session, incident_id, Incident.status != "open",
                       {"status": "open", "closed_at": None, "updated_at": now})
    incident = _incident(session, incident_id)
    if not won:
        return ActionResult(incident_id, False, f"incident {incident_id} is already open")
    if incident.acknowledged_at is None:
        start_escalation(settings or AlertSettings(), incident, max(incident.escalation_level, 0), now)
    record_event(session, incident.id, "reopened", actor, now, {"via": via} if via else {},
                 notify=_notify(settings))
    return ActionResult(incident_id, True, f"incident {incident_id} reopened by {actor}")


def assign(session: Session, incident_id: int, actor: str, owner: str, now: datetime, *,
           settings: AlertSettings | None = None, via: str | None = None) -> ActionResult:
    """Make `owner` (an active user) the person running the incident."""
    user = get_user(session, owner.strip())
    if user is None or not user.active:
        raise ActionInvalid(f"{owner!r} is not an active flarewatch user")
    won = _conditional(session, incident_id, Incident.owner.is_distinct_from(user.name),
                       {"owner": user.name, "updated_at": now})
    incident = _incident(session, incident_id)
    if not won:
        return ActionResult(incident_id, False, f"incident {incident_id} is already assigned to {user.name}")
    record_event(session, incident.id, "assigned", actor, now, {"owner": user.name, **({"via": via} if via else {})},
                 notify=_notify(settings))
    return ActionResult(incident_id, True, f"incident {incident_id} assigned to {user.name}")


MAX_NOTE = 5000


def add_note(session: Session, incident_id: int, actor: str, text: str, now: datetime, *,
             settings: AlertSettings | None = None, via: str | None = None) -> ActionResult:
    """A note on the incident's timeline (also posted in its Slack threads)."""
    text = text.strip().replace("\x00", "")
    if not text:
        raise ActionInvalid("a note needs some text")
    if len(text) > MAX_NOTE:
        raise ActionInvalid(f"a note is at most {MAX_NOTE} characters")
    incident = _incident(session, incident_id)
    incident.updated_at = now
    record_event(session, incident.id, "note", actor, now, {"text": text, **({"via": via} if via else {})},
                 notify=_notify(settings))
    return ActionResult(incident_id, True, f"note added to incident {incident_id}")


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhd])\s*$")


def parse_until(value: str, now: datetime) -> datetime:
    """`2h`, `30m`, `1d` from now, or an ISO time (UTC unless it says otherwise): every surface's "until"."""
    match = _DURATION.match(value)
    if match:
        amount, unit = float(match.group(1)), match.group(2)
        return now + timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[unit]: amount})
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ActionInvalid(f"{value!r} is neither a duration (30m, 2h, 1d) nor an ISO time") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def canonical_brand(name: str, brands: list[str]) -> str:
    """The configured brand `name` means, matched case-insensitively as brand terms are; unknown ones are refused."""
    wanted = name.strip().casefold()
    for brand in brands:
        if brand.casefold() == wanted:
            return brand
    known = ", ".join(brands) or "none configured"
    raise ActionInvalid(f"no brand {name!r} is configured (brands: {known})")


def silence_brand(session: Session, incident_id: int | None, brand: str, until: datetime, actor: str, reason: str,
                  now: datetime, *, brands: list[str], settings: AlertSettings | None = None) -> ActionResult:
    """`silence` for a brand named as a person types it (checked against the configured brands)."""
    name = canonical_brand(brand, brands)
    row = silence(session, name, until, actor, reason.strip()[:2000], now, settings=settings)
    return ActionResult(incident_id, True, f"{name} silenced until {row.until:%Y-%m-%d %H:%M} UTC")


def active_silence_until(session: Session, brand: str, now: datetime) -> datetime | None:
    """When the longest silence covering `brand` ends (None: not silenced), for pages and the API."""
    from alerts.routing import active_silence

    row = active_silence(session, brand, now)
    return row.until if row is not None else None


ActionKind = Literal["acknowledge", "snooze", "resolve", "reopen", "silence", "assign", "note", "claim"]
REQUIRED_ROLE: dict[str, str] = {
    "acknowledge": "manager", "snooze": "manager", "resolve": "manager", "reopen": "manager",
    "silence": "manager", "assign": "manager", "note": "manager", "claim": "agent",
}


@dataclass(frozen=True)
class IncidentAction:
    """One request, from whichever surface: what to do and its arguments."""

    kind: ActionKind
    incident_id: int | None = None  # None only for a silence by brand name
    until: datetime | None = None  # snooze, silence
    owner: str | None = None  # assign
    text: str | None = None  # note; the reason of a silence
    brand: str | None = None  # silence (default: the incident's brand)
    post_id: int | None = None  # claim
    claim_minutes: float = 30.0


def authorize(session: Session, actor: str, needed: str) -> User:
    """The active user `actor` names, holding at least `needed`; else ActionForbidden saying why."""
    user = get_user(session, actor) if actor else None
    if user is None:
        raise ActionForbidden(f"{actor!r} is not a flarewatch user" if actor else "who is acting? (no user given)")
    if not user.active:
        raise ActionForbidden(f"user {user.name} is deactivated")
    if not has_role(user.role, needed):
        raise ActionForbidden(f"this needs the {needed} role; {user.name} is {user.role}")
    return user


def perform(session: Session, action: IncidentAction, actor: str, now: datetime, *, settings: AlertSettings,
            brands: list[str], via: str) -> ActionResult:
    """The one way any surface changes an incident: role check, then the action, in the caller's transaction."""
    user = authorize(session, actor, REQUIRED_ROLE[action.kind])
    who = user.name
    if action.kind == "silence":
        brand = action.brand
        if brand is None:
            if action.incident_id is None:
                raise ActionInvalid("a silence needs a brand or an incident")
            brand = _incident(session, action.incident_id).brand
        if action.until is None:
            raise ActionInvalid("a silence needs an end (until)")
        return silence_brand(session, action.incident_id, brand, action.until, who, action.text or "", now,
                             brands=brands, settings=settings)
    if action.incident_id is None:
        raise ActionInvalid(f"{action.kind} needs an incident")
    incident_id = action.incident_id
    if action.kind == "acknowledge":
        return acknowledge(session, incident_id, who, now, settings=settings, via=via)
    if action.kind == "snooze":
        if action.until is None:
            raise ActionInvalid("a snooze needs an end (until)")
        return snooze(session, incident_id, who, action.until, now, settings=settings, via=via)
    if action.kind == "resolve":
        return resolve(session, incident_id, who, now, settings=settings, via=via)
    if action.kind == "reopen":
        return reopen(session, incident_id, who, now, settings=settings, via=via)
    if action.kind == "assign":
        return assign(session, incident_id, who, action.owner or "", now, settings=settings, via=via)
    if action.kind == "note":
        return add_note(session, incident_id, who, action.text or "", now, settings=settings, via=via)
    return claim_top_post(session, incident_id, who, now, action.claim_minutes, post_id=action.post_id,
                          settings=settings, via=via)
