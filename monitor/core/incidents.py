"""Incidents: their whole lifecycle and how they are read, the one service every surface calls.

Detection decides when an incident opens, changes severity or closes (`open_incident`,
`raise_severity`, `close_incident`). People act through `perform` with an `IncidentAction`, the
same from Slack buttons, the web pages, the REST API and the CLI: it checks the role
(`REQUIRED_ROLE`: managers and admins change incidents; agents may only claim posts) and that the
actor is an active user, then runs the action, so the rules are the same everywhere.

Each action is one conditional UPDATE (so double clicks and two people clicking at once change the
incident once) and one timeline event naming the actor (`monitor.core.timeline.record_event`), all
in the caller's transaction. A repeated action returns `changed=False` with the reason, not an error.
What the alert channels do about a change (thread notes, edited Slack messages, the escalation
clock of a re-opened incident) is behind `Alerting`, which `alerts.routing.Alerts` implements and
the top layer (daemon, web app, CLI) or the Slack interactivity hands in; core imports no channel.
The read side (`get_incident`, `list_incidents`, `incident_events`) serves the API, the pages,
reports and replay.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, Protocol, get_args

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from monitor.core import queue
from monitor.core.accounts import get_user, has_role
from monitor.core.enums import EventKind, FlagState, IncidentStatus, Role
from monitor.core.storage.db import update_if
from monitor.core.storage.schema import FlaggedPost, Incident, IncidentEvent, IncidentPost, Post, Silence, User
from monitor.core.timeline import record_event


class ActionError(Exception):
    """The action cannot be done; the message says why, for the person who asked."""


class IncidentNotFound(ActionError, LookupError):
    pass


class ActionForbidden(ActionError, PermissionError):
    """The actor may not do this (unknown, deactivated, or without the role)."""


class ActionInvalid(ActionError, ValueError):
    """The request itself is wrong (a time in the past, an unknown brand or user, an empty note)."""


class Alerting(Protocol):
    """The alert channels' side of the lifecycle, in the caller's transaction."""

    def notify(self, session: Session, incident: Incident, event: IncidentEvent, now: datetime) -> object:
        """Queue what this event should tell people (a `monitor.core.timeline.Notify`)."""
        ...

    def restart_escalation(self, incident: Incident, now: datetime) -> None:
        """An unacknowledged incident was re-opened: run its escalation clock again from its level."""
        ...


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


# -- people's actions (perform is the way in) ---------------------------------------------------


@dataclass(frozen=True)
class ActionResult:
    incident_id: int | None
    changed: bool
    message: str
    post_id: int | None = None  # the post a claim is about


def _update(session: Session, incident_id: int, condition: ColumnElement[bool], **values: Any) -> bool:
    return update_if(session, Incident, Incident.id == incident_id, condition, **values)


def _via(via: str | None, **data: Any) -> dict[str, Any]:
    return {**data, **({"via": via} if via else {})}


def acknowledge(session: Session, incident_id: int, actor: str, now: datetime, *, alerting: Alerting,
                via: str | None = None) -> ActionResult:
    """Take ownership: stops the escalation climb."""
    won = _update(session, incident_id, Incident.acknowledged_at.is_(None) & (Incident.status == IncidentStatus.OPEN),
                  acknowledged_at=now, acknowledged_by=actor, next_escalation_at=None, updated_at=now)
    incident = get_incident(session, incident_id, fresh=True)
    if not won:
        if incident.status != IncidentStatus.OPEN:
            return ActionResult(incident_id, False, f"incident {incident_id} is already {incident.status}")
        return ActionResult(incident_id, False, f"incident {incident_id} was already acknowledged by "
                                                f"{incident.acknowledged_by}")
    record_event(session, incident.id, EventKind.ACKNOWLEDGED, actor, now, _via(via), notify=alerting.notify)
    return ActionResult(incident_id, True, f"incident {incident_id} acknowledged by {actor}")


def snooze(session: Session, incident_id: int, actor: str, until: datetime, now: datetime, *, alerting: Alerting,
           via: str | None = None) -> ActionResult:
    """Mute the incident's alerts and pause its escalation until `until`.

    If it is still unacknowledged then, escalation resumes (`alerts.escalation` re-alerts the current level).
    """
    if until <= now:
        raise ActionInvalid("a snooze must end in the future")
    incident = get_incident(session, incident_id, fresh=True)
    if incident.status != IncidentStatus.OPEN:
        return ActionResult(incident_id, False, f"incident {incident_id} is already {incident.status}")
    values: dict[str, Any] = {"snoozed_until": until, "updated_at": now}
    if incident.acknowledged_at is None:
        values["next_escalation_at"] = until
    _update(session, incident_id, Incident.status == IncidentStatus.OPEN, **values)
    incident = get_incident(session, incident_id, fresh=True)
    record_event(session, incident.id, EventKind.SNOOZED, actor, now,
                 _via(via, until=until.isoformat(timespec="minutes")), notify=alerting.notify)
    return ActionResult(incident_id, True, f"incident {incident_id} snoozed until {until:%Y-%m-%d %H:%M} UTC")


def resolve(session: Session, incident_id: int, actor: str, now: datetime, *, alerting: Alerting,
            via: str | None = None) -> ActionResult:
    """Mark the incident handled: stops escalation and all further alerting for it."""
    won = _update(session, incident_id, Incident.status == IncidentStatus.OPEN, status=IncidentStatus.RESOLVED,
                  closed_at=now, next_escalation_at=None, updated_at=now)
    incident = get_incident(session, incident_id, fresh=True)
    if not won:
        return ActionResult(incident_id, False, f"incident {incident_id} is already {incident.status}")
    record_event(session, incident.id, EventKind.RESOLVED, actor, now, _via(via), notify=alerting.notify)
    return ActionResult(incident_id, True, f"incident {incident_id} resolved by {actor}")


def reopen(session: Session, incident_id: int, actor: str, now: datetime, *, alerting: Alerting,
           via: str | None = None) -> ActionResult:
    """Open a resolved or closed incident again; unacknowledged, its escalation clock restarts."""
    won = _update(session, incident_id, Incident.status != IncidentStatus.OPEN, status=IncidentStatus.OPEN,
                  closed_at=None, updated_at=now)
    incident = get_incident(session, incident_id, fresh=True)
    if not won:
        return ActionResult(incident_id, False, f"incident {incident_id} is already open")
    if incident.acknowledged_at is None:
        alerting.restart_escalation(incident, now)
    record_event(session, incident.id, EventKind.REOPENED, actor, now, _via(via), notify=alerting.notify)
    return ActionResult(incident_id, True, f"incident {incident_id} reopened by {actor}")


def assign(session: Session, incident_id: int, actor: str, owner: str, now: datetime, *, alerting: Alerting,
           via: str | None = None) -> ActionResult:
    """Make `owner` (an active user) the person running the incident."""
    user = get_user(session, owner.strip())
    if user is None or not user.active:
        raise ActionInvalid(f"{owner!r} is not an active flarewatch user")
    won = _update(session, incident_id, Incident.owner.is_distinct_from(user.name), owner=user.name, updated_at=now)
    incident = get_incident(session, incident_id, fresh=True)
    if not won:
        return ActionResult(incident_id, False, f"incident {incident_id} is already assigned to {user.name}")
    record_event(session, incident.id, EventKind.ASSIGNED, actor, now, _via(via, owner=user.name),
                 notify=alerting.notify)
    return ActionResult(incident_id, True, f"incident {incident_id} assigned to {user.name}")


MAX_NOTE = 5000


def add_note(session: Session, incident_id: int, actor: str, text: str, now: datetime, *, alerting: Alerting,
             via: str | None = None) -> ActionResult:
    """A note on the incident's timeline (also posted in its Slack threads)."""
    text = text.strip().replace("\x00", "")
    if not text:
        raise ActionInvalid("a note needs some text")
    if len(text) > MAX_NOTE:
        raise ActionInvalid(f"a note is at most {MAX_NOTE} characters")
    incident = get_incident(session, incident_id, fresh=True)
    incident.updated_at = now
    record_event(session, incident.id, EventKind.NOTE, actor, now, _via(via, text=text), notify=alerting.notify)
    return ActionResult(incident_id, True, f"note added to incident {incident_id}")


def claim_top_post(session: Session, incident_id: int, actor: str, now: datetime, minutes: float, *,
                   alerting: Alerting, post_id: int | None = None, via: str | None = None) -> ActionResult:
    """Claim the incident's most urgent open queue item (or `post_id`) for `actor` to answer."""
    incident = get_incident(session, incident_id, fresh=True)
    if post_id is None:
        post_id = session.scalar(
            select(FlaggedPost.post_id)
            .where(FlaggedPost.incident_id == incident_id, FlaggedPost.state == FlagState.OPEN)
            .order_by(FlaggedPost.urgency.desc(), FlaggedPost.post_id).limit(1)
        )
    elif session.get(IncidentPost, (incident_id, post_id)) is None:
        raise ActionError(f"post {post_id} is not part of incident {incident_id}")
    if post_id is None:
        return ActionResult(incident_id, False, f"incident {incident_id} has no open posts to claim")
    post = session.get(Post, post_id)
    extra = _via(via, author=post.author if post else "?")  # the thread note names the author
    # The queue puts the claim on the timeline of the incident the post was flagged for: when that is
    # this incident, that event is the one to tell people about; otherwise this incident gets its own.
    ours = session.scalar(select(FlaggedPost.incident_id).where(FlaggedPost.post_id == post_id)) == incident_id
    try:
        won = queue.claim(session, post_id, actor, now, minutes,
                          incident_data=extra if ours else None, notify=alerting.notify if ours else None)
    except queue.QueueError as exc:
        return ActionResult(incident_id, False, str(exc))
    if not won:
        holder = session.scalar(select(FlaggedPost.claimed_by).where(FlaggedPost.post_id == post_id))
        return ActionResult(incident_id, False, f"post {post_id} is already claimed by {holder}", post_id)
    if not ours:
        record_event(session, incident.id, EventKind.POST_CLAIMED, actor, now, {"post_id": post_id, **extra},
                     notify=alerting.notify)
    return ActionResult(incident_id, True, f"post {post_id} claimed by {actor} for {minutes:g} min", post_id)


# -- silences (per brand; routing and escalation read them through active_silence) -------------------


def silence(session: Session, brand: str, until: datetime, actor: str, reason: str, now: datetime, *,
            alerting: Alerting) -> Silence:
    """Mute every alert about `brand` until `until` (recorded, and noted on its open incidents)."""
    if until <= now:
        raise ActionInvalid("a silence must end in the future")
    row = Silence(brand=brand, until=until, created_by=actor, created_at=now, reason=reason)
    session.add(row)
    session.flush()
    open_ones = session.scalars(select(Incident).where(Incident.brand == brand, Incident.status == IncidentStatus.OPEN))
    for incident in open_ones:
        record_event(session, incident.id, EventKind.SILENCED, actor, now,
                     {"until": until.isoformat(timespec="minutes"), "reason": reason, "silence_id": row.id},
                     notify=alerting.notify)
    return row


def active_silence(session: Session, brand: str, now: datetime) -> Silence | None:
    """The silence that lasts longest among those covering `brand` right now."""
    return session.scalar(
        select(Silence).where(Silence.brand == brand, Silence.until > now).order_by(Silence.until.desc()).limit(1)
    )


def mute_reason(session: Session, incident: Incident, now: datetime) -> tuple[str, datetime] | None:
    """Why the incident's alerts and escalation are held now, and until when: its brand's silence
    (the longest), else its own snooze; None when nothing mutes it. Routing and escalation both ask."""
    silence = active_silence(session, incident.brand, now)
    if silence is not None:
        return "silenced", silence.until
    if incident.snoozed_until is not None and incident.snoozed_until > now:
        return "snoozed", incident.snoozed_until
    return None


def active_silence_until(session: Session, brand: str, now: datetime) -> datetime | None:
    """When the longest silence covering `brand` ends (None: not silenced), for pages and the API."""
    row = active_silence(session, brand, now)
    return row.until if row is not None else None


def canonical_brand(name: str, brands: list[str]) -> str:
    """The configured brand `name` means, matched case-insensitively as brand terms are; unknown ones are refused."""
    wanted = name.strip().casefold()
    for brand in brands:
        if brand.casefold() == wanted:
            return brand
    known = ", ".join(brands) or "none configured"
    raise ActionInvalid(f"no brand {name!r} is configured (brands: {known})")


def silence_brand(session: Session, incident_id: int | None, brand: str, until: datetime, actor: str, reason: str,
                  now: datetime, *, brands: list[str], alerting: Alerting) -> ActionResult:
    """`silence` for a brand named as a person types it (checked against the configured brands)."""
    name = canonical_brand(brand, brands)
    row = silence(session, name, until, actor, reason.strip()[:2000], now, alerting=alerting)
    return ActionResult(incident_id, True, f"{name} silenced until {row.until:%Y-%m-%d %H:%M} UTC")


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhd])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_until(value: str, now: datetime) -> datetime:
    """`2h`, `30m`, `1d` from now, or an ISO time (UTC unless it says otherwise): every surface's "until"."""
    match = _DURATION.match(value)
    if match:
        return now + timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ActionInvalid(f"{value!r} is neither a duration (30m, 2h, 1d) nor an ISO time") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


ActionKind = Literal["acknowledge", "snooze", "resolve", "reopen", "silence", "assign", "note", "claim"]
ACTION_KINDS: tuple[ActionKind, ...] = get_args(ActionKind)


def action_kind(value: str) -> ActionKind:
    """The action a surface's string names (a form field, a button), or ActionInvalid."""
    for kind in ACTION_KINDS:
        if kind == value:
            return kind
    raise ActionInvalid(f"unknown action {value!r}")


REQUIRED_ROLE: dict[ActionKind, Role] = {
    "acknowledge": Role.MANAGER, "snooze": Role.MANAGER, "resolve": Role.MANAGER, "reopen": Role.MANAGER,
    "silence": Role.MANAGER, "assign": Role.MANAGER, "note": Role.MANAGER, "claim": Role.AGENT,
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


def perform(session: Session, action: IncidentAction, actor: str, now: datetime, *, alerting: Alerting,
            brands: list[str], via: str) -> ActionResult:
    """The one way any surface changes an incident: role check, then the action, in the caller's transaction."""
    who = authorize(session, actor, REQUIRED_ROLE[action.kind]).name
    if action.kind == "silence":
        brand = action.brand
        if brand is None:
            if action.incident_id is None:
                raise ActionInvalid("a silence needs a brand or an incident")
            brand = get_incident(session, action.incident_id, fresh=True).brand
        if action.until is None:
            raise ActionInvalid("a silence needs an end (until)")
        return silence_brand(session, action.incident_id, brand, action.until, who, action.text or "", now,
                             brands=brands, alerting=alerting)
    if action.incident_id is None:
        raise ActionInvalid(f"{action.kind} needs an incident")
    incident_id = action.incident_id
    if action.kind == "acknowledge":
        return acknowledge(session, incident_id, who, now, alerting=alerting, via=via)
    if action.kind == "snooze":
        if action.until is None:
            raise ActionInvalid("a snooze needs an end (until)")
        return snooze(session, incident_id, who, action.until, now, alerting=alerting, via=via)
    if action.kind == "resolve":
        return resolve(session, incident_id, who, now, alerting=alerting, via=via)
    if action.kind == "reopen":
        return reopen(session, incident_id, who, now, alerting=alerting, via=via)
    if action.kind == "assign":
        return assign(session, incident_id, who, action.owner or "", now, alerting=alerting, via=via)
    if action.kind == "note":
        return add_note(session, incident_id, who, action.text or "", now, alerting=alerting, via=via)
    return claim_top_post(session, incident_id, who, now, action.claim_minutes, alerting=alerting,
                          post_id=action.post_id, via=via)


# -- reading ----------------------------------------------------------------------------------------


def get_incident(session: Session, incident_id: int, *, fresh: bool = False) -> Incident:
    """The incident, or IncidentNotFound; `fresh` re-reads a row a conditional UPDATE may have changed."""
    incident = session.get(Incident, incident_id, populate_existing=fresh)
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
