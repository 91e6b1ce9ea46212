"""What the delivery worker hands a sender, and what a sender may answer."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar, Protocol, TypeVar

from pydantic import BaseModel

from alerts.view import EventView, IncidentView

if TYPE_CHECKING:
    from alerts.settings import AlertSettings


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


class ChannelSender(Sender, Protocol):
    """A sender class the registry can build: its channel name, its settings table and a factory.

    `channel` is the outbox's `channel` value; `settings_model` is the model of the channel's own
    [alerts...] table (defined beside the sender; None when it has none); `configured` builds the
    sender from [alerts], or returns None when the channel is not configured.
    """

    channel: ClassVar[str]
    settings_model: ClassVar[type[BaseModel] | None]

    @classmethod
    def configured(cls, settings: AlertSettings) -> Sender | None: ...


SENDERS: dict[str, type[ChannelSender]] = {}
S = TypeVar("S", bound=type)


def register_sender(cls: S) -> S:
    """Class decorator: make a channel's sender known to `alerts.senders.build_senders`."""
    SENDERS[cls.channel] = cls  # type: ignore[attr-defined]
    return cls

