"""What the delivery worker hands a sender, and what a sender may answer."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from alerts.view import EventView, IncidentView


@dataclass(frozen=True)
class ThreadRef:
    """An incident's parent message in one Slack place."""

    channel_id: str
    ts: str


@dataclass(frozen=True)
class AlertJob:
    message_id: int
    idempotency_key: str
    channel: str  # slack | console | webhook | email | wecom | dingtalk
    target: str
    kind: str  # Slack: parent | update | reply; other channels: the event kind
    attempt: int  # 1 for the first try; later tries may follow an attempt whose outcome is unknown
    created_at: datetime
    now: datetime
    view: IncidentView
    event: EventView | None
    thread: ThreadRef | None = None  # Slack replies and updates: the place's parent message

    @property
    def maybe_sent(self) -> bool:
        """An earlier attempt may have reached the service (timeout, crash): check before sending again."""
        return self.attempt > 1


@dataclass(frozen=True)
class Delivered:
    external_ref: str | None = None  # e.g. "C0123ABCD:1503435956.000247"
    thread: ThreadRef | None = None  # a new parent message to remember


class RetryableError(Exception):
    """Network trouble, 5xx, rate limits: try again later (after `retry_after` seconds when the service said so)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Deferred(Exception):
    """Not sent and not attempted (pacing, a parent still on its way): try again after `seconds`."""

    def __init__(self, reason: str, seconds: float) -> None:
        super().__init__(reason)
        self.seconds = seconds


class PermanentError(Exception):
    """The service refused the message for good (bad channel, bad token): retrying cannot help."""


class Sender(Protocol):
    def send(self, job: AlertJob) -> Delivered:
        """Deliver one message, or raise RetryableError, Deferred or PermanentError."""
        ...
