"""The named values stored in status and kind columns. StrEnums: a member equals its stored string,
so rows, JSON and templates are unchanged; code names them instead of spelling them."""
from __future__ import annotations

from enum import StrEnum


class IncidentStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"  # a person marked it handled; detection still closes it
    CLOSED = "closed"  # detection saw it end (or merged it into another)


class EventKind(StrEnum):
    """`incident_events.kind`."""

    # detection
    OPENED = "opened"
    SIGNAL = "signal"
    SEVERITY_CHANGED = "severity_changed"
    CLOSED = "closed"
    MERGED = "merged"
    # escalation
    ALERTED = "alerted"
    ESCALATED = "escalated"
    SNOOZE_ENDED = "snooze_ended"
    # people
    ACKNOWLEDGED = "acknowledged"
    SNOOZED = "snoozed"
    RESOLVED = "resolved"
    SILENCED = "silenced"
    REOPENED = "reopened"
    ASSIGNED = "assigned"
    NOTE = "note"
    # the review queue: "post_" + the post event's kind
    POST_CLAIMED = "post_claimed"
    POST_RELEASED = "post_released"
    POST_ANSWERED = "post_answered"
    POST_DISMISSED = "post_dismissed"
    POST_LAPSED = "post_lapsed"
    # delivery
    ALERT_FAILED = "alert_failed"
    ALERT_RETRYING = "alert_retrying"
    ALERTS_SUPPRESSED = "alerts_suppressed"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class FlagState(StrEnum):
    """`flagged_posts.state`."""

    OPEN = "open"
    CLAIMED = "claimed"
    ANSWERED = "answered"
    DISMISSED = "dismissed"


class Role(StrEnum):
    """Staff roles, each allowed what the ones before it are."""

    AGENT = "agent"
    MANAGER = "manager"
    ADMIN = "admin"
