"""Which channels hear about an incident event, written to the outbox in the caller's transaction.

Slack gets, per place (a channel or a direct message): one parent message per incident, created on
first contact and edited (chat.update) after every change, and a thread reply per event. Console,
webhook, e-mail, WeCom and DingTalk targets get one message per event. The places are those of the incident's
escalation levels reached so far, plus any place already alerted (so a policy change never orphans
a thread).

Silences (per brand) and snoozes (per incident) mute what detection and escalation say: no new
parent, no thread reply, no console/webhook/e-mail message; existing parent messages are still
edited so Slack never shows a stale state, and the suppression is recorded once in the timeline.
People's own actions (`HUMAN_KINDS`: acknowledged, snoozed, resolved…) are always posted, to the
places that already have the incident.
An incident opened during a silence waits at escalation level -1 until the silence ends, when
`alerts.escalation.escalate_due` alerts it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.outbox import enqueue, event_key, parent_key
from alerts.settings import AlertSettings, EscalationLevel, EscalationPolicy
from monitor.core.enums import EventKind, IncidentStatus
from monitor.core.incidents import mute_reason
from monitor.core.timeline import Notify, record_event
from monitor.core.storage.schema import Incident, IncidentEvent, OutboxMessage

OPENING_KINDS = frozenset({EventKind.OPENED})
# People's actions (monitor.core.incidents, monitor.core.queue): always told, never start an alert by themselves.
HUMAN_KINDS = frozenset({EventKind.ACKNOWLEDGED, EventKind.SNOOZED, EventKind.RESOLVED, EventKind.SILENCED,
                         EventKind.REOPENED, EventKind.POST_CLAIMED, EventKind.ASSIGNED, EventKind.NOTE})
TERMINAL_STATUSES = frozenset({IncidentStatus.RESOLVED, IncidentStatus.CLOSED})
NOT_YET_ALERTED = -1


class Target(NamedTuple):
    channel: str  # slack | console | webhook | email | wecom | dingtalk
    target: str  # Slack place (channel id/#name or user id), webhook or robot name, address; "" for console


def level_targets(settings: AlertSettings, level: EscalationLevel) -> list[Target]:
    targets: list[Target] = []
    if settings.slack_enabled:
        targets += [Target("slack", place) for place in [*level.channels, *level.dm]]
    elif level.channels or level.dm or level.mention:
        targets.append(Target("console", ""))
    targets += [Target("webhook", name) for name in level.webhooks]
    targets += [Target("email", address) for address in level.email]
    targets += [Target("wecom", name) for name in level.wecom]
    targets += [Target("dingtalk", name) for name in level.dingtalk]
    if settings.console:
        targets.append(Target("console", ""))
    return targets


def reached_targets(settings: AlertSettings, policy: EscalationPolicy, level: int) -> list[Target]:
    """Everyone alerted at levels 0..level, in order, without repeats."""
    seen: dict[Target, None] = {}
    for step in policy.levels[: max(level, 0) + 1]:
        seen.update(dict.fromkeys(level_targets(settings, step)))
    return list(seen)


def alerted_targets(session: Session, incident_id: int) -> list[Target]:
    """Places the incident was sent to (not `alerts.fallback`, which only gets what failed elsewhere)."""
    rows = session.execute(
        select(OutboxMessage.channel, OutboxMessage.target)
        .where(OutboxMessage.incident_id == incident_id, OutboxMessage.idempotency_key.not_like("%:fallback"))
        .order_by(OutboxMessage.id)
    )
    return list(dict.fromkeys(Target(channel, target) for channel, target in rows))


def start_escalation(settings: AlertSettings, incident: Incident, level: int, now: datetime) -> None:
    """Put the incident at `level` with the clock running for that level's acknowledgement timeout."""
    policy = settings.policy_for(incident.brand, incident.severity)
    incident.escalation_level = level
    has_next = level + 1 < len(policy.levels)
    waiting = incident.acknowledged_at is None and incident.status not in TERMINAL_STATUSES
    timeout = timedelta(minutes=policy.levels[min(level, len(policy.levels) - 1)].ack_timeout_minutes)
    incident.next_escalation_at = now + timeout if has_next and waiting else None


def _record_suppression(session: Session, incident: Incident, reason: str, until: datetime, now: datetime) -> None:
    data = {"reason": reason, "until": until.isoformat()}
    last = session.scalar(
        select(IncidentEvent)
        .where(IncidentEvent.incident_id == incident.id, IncidentEvent.kind == EventKind.ALERTS_SUPPRESSED)
        .order_by(IncidentEvent.id.desc())
        .limit(1)
    )
    if last is None or last.data != data:
        record_event(session, incident.id, EventKind.ALERTS_SUPPRESSED, None, now, data)


@dataclass(frozen=True)
class Alerts:
    """The alert channels under these settings, as the incident lifecycle's `monitor.core.incidents.Alerting`."""

    settings: AlertSettings

    def notify(self, session: Session, incident: Incident, event: IncidentEvent, now: datetime) -> list[OutboxMessage]:
        return notify(session, self.settings, incident, event, now)

    def restart_escalation(self, incident: Incident, now: datetime) -> None:
        start_escalation(self.settings, incident, max(incident.escalation_level, 0), now)


def notifier(settings: AlertSettings) -> Notify:
    """`notify` bound to these settings: the `Notify` the daemon hands to detection."""
    return Alerts(settings).notify


def notify(
    session: Session, settings: AlertSettings, incident: Incident, event: IncidentEvent, now: datetime
) -> list[OutboxMessage]:
    """Queue the alerts for one incident event, in the caller's transaction.

    Called for every incident change (detection's `opened`/updates/`closed`, escalation, people's
    actions). An `opened` event also starts the escalation clock.
    """
    session.flush()
    if incident.status in TERMINAL_STATUSES:
        incident.next_escalation_at = None
    human = event.kind in HUMAN_KINDS
    muted = None if human else mute_reason(session, incident, now)
    opening = not human and (
        event.kind in OPENING_KINDS or (incident.escalation_level == NOT_YET_ALERTED and muted is None))

    if opening and incident.status not in TERMINAL_STATUSES:
        if muted is not None:  # wait for the silence/snooze to end; escalate_due picks it up then
            incident.escalation_level = NOT_YET_ALERTED
            incident.next_escalation_at = muted[1]
            _record_suppression(session, incident, muted[0], muted[1], now)
            return []
        start_escalation(settings, incident, max(incident.escalation_level, 0), now)

    policy = settings.policy_for(incident.brand, incident.severity)
    existing = alerted_targets(session, incident.id)
    if human or incident.status in TERMINAL_STATUSES or incident.escalation_level == NOT_YET_ALERTED:
        targets = existing  # actions and closures are told where the incident was seen, nowhere new
    else:
        targets = list(dict.fromkeys([*existing, *reached_targets(settings, policy, incident.escalation_level)]))
    if muted is not None:
        _record_suppression(session, incident, muted[0], muted[1], now)

    messages: list[OutboxMessage] = []
    for target in targets:
        if target.channel == "slack":
            messages += _slack(session, incident, event, target.target, opening, muted is not None, now)
        elif muted is None:
            messages.append(enqueue(session, incident, event, target.channel, target.target, event.kind,
                                    {"event": event.kind}, now))
    return messages


def _slack(
    session: Session, incident: Incident, event: IncidentEvent, place: str, opening: bool, muted: bool, now: datetime
) -> list[OutboxMessage]:
    payload = {"place": place, "event": event.kind}
    has_parent = session.scalar(
        select(OutboxMessage.id).where(OutboxMessage.idempotency_key == parent_key(incident.id, place))
    ) is not None
    if not has_parent:
        if muted:
            return []
        parent = enqueue(session, incident, event, "slack", place, "parent", payload, now,
                         key=parent_key(incident.id, place))
        if opening:
            return [parent]
        # A place reached later (an escalation level, a severity change): the parent shows the current
        # state; the reply carries this event (e.g. the escalation's mentions).
        reply = enqueue(session, incident, event, "slack", place, "reply", payload, now,
                        key=event_key(incident, event, "slack", place, "reply"))
        return [parent, reply]
    if opening:
        return []  # the parent already shows this state
    out = [enqueue(session, incident, event, "slack", place, "update", payload, now,
                   key=event_key(incident, event, "slack", place, "update"))]
    if not muted:
        out.append(enqueue(session, incident, event, "slack", place, "reply", payload, now,
                           key=event_key(incident, event, "slack", place, "reply")))
    return out
