"""The escalation clock: what the daemon's escalate job runs every `escalate_interval_seconds`.

An open, unacknowledged incident whose `next_escalation_at` has passed climbs one level of its
policy (`[[alerts.escalation]]`, chosen by brand and severity): an `escalated` event with the level
and its targets, and the alerts for it (new places get the incident; existing threads get a note
mentioning the level's people), all in one transaction per incident. Acknowledging, resolving or
closing clears `next_escalation_at`, which stops the climb. While the brand is silenced or the
incident snoozed, nothing climbs: the timer moves to the end of the silence/snooze. When a snooze
ends on an unacknowledged incident, the current level is alerted again (`snooze_ended`) and its
timeout restarts; an incident opened during a silence is alerted when the silence ends.
"""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from alerts.routing import NOT_YET_ALERTED, notifier, start_escalation
from alerts.settings import AlertSettings, EscalationLevel
from monitor.core.clock import Clock
from monitor.core.enums import EventKind, IncidentStatus
from monitor.core.incidents import mute_reason
from monitor.core.storage.db import transaction
from monitor.core.storage.schema import Incident
from monitor.core.timeline import record_event

log = logging.getLogger(__name__)
ACTOR = "escalation"


def describe(level: EscalationLevel) -> list[str]:
    """The level's targets, for the timeline."""
    return ([f"slack:{c}" for c in level.channels] + [f"mention:{m}" for m in level.mention]
            + [f"dm:{u}" for u in level.dm] + [f"webhook:{w}" for w in level.webhooks]
            + [f"email:{e}" for e in level.email] + [f"wecom:{r}" for r in level.wecom]
            + [f"dingtalk:{r}" for r in level.dingtalk])


def step(session: Session, settings: AlertSettings, incident: Incident, now: datetime) -> bool:
    """Advance one due incident; True when something was alerted."""
    if incident.status != IncidentStatus.OPEN or incident.acknowledged_at is not None:
        incident.next_escalation_at = None
        return False
    muted = mute_reason(session, incident, now)
    if muted is not None:  # nothing climbs while muted: look again when the silence or snooze ends
        incident.next_escalation_at = muted[1]
        return False
    policy = settings.policy_for(incident.brand, incident.severity)
    notify = notifier(settings)
    if incident.escalation_level == NOT_YET_ALERTED:  # opened during a silence that is now over
        record_event(session, incident.id, EventKind.ALERTED, ACTOR, now, {"reason": "silence ended"}, notify=notify)
        return True
    level = min(incident.escalation_level, len(policy.levels) - 1)
    if incident.snoozed_until is not None:  # the snooze is over and nobody acknowledged
        incident.snoozed_until = None
        start_escalation(settings, incident, level, now)
        record_event(session, incident.id, EventKind.SNOOZE_ENDED, ACTOR, now,
                     {"level": level, "mention": policy.levels[level].mention}, notify=notify)
        return True
    if level + 1 >= len(policy.levels):  # top of the policy: nobody left to wake
        incident.next_escalation_at = None
        return False
    start_escalation(settings, incident, level + 1, now)
    target = policy.levels[level + 1]
    record_event(session, incident.id, EventKind.ESCALATED, ACTOR, now, {
        "level": level + 1, "after_minutes": policy.levels[level].ack_timeout_minutes,
        "targets": describe(target), "mention": target.mention,
    }, notify=notify)
    log.info("incident %s (%s) escalated to level %d", incident.id, incident.brand, level + 1)
    return True


def escalate_due(sessions: sessionmaker[Session], settings: AlertSettings, clock: Clock) -> int:
    """Climb every due incident one level; returns how many were alerted. One transaction per incident."""
    now = clock.now()
    with sessions() as session:
        due = list(session.scalars(
            select(Incident.id).where(Incident.status == IncidentStatus.OPEN, Incident.next_escalation_at <= now)
            .order_by(Incident.next_escalation_at)
        ))
    alerted = 0
    for incident_id in due:
        with transaction(sessions) as session:
            incident = session.get(Incident, incident_id, with_for_update=True)
            # Re-check inside the transaction: an acknowledgement may have landed since the scan.
            if incident is None or incident.next_escalation_at is None or incident.next_escalation_at > now:
                continue
            alerted += step(session, settings, incident, now)
    return alerted
