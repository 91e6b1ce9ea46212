"""What the delivery worker hands a sender, and what a sender may answer."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, cast

from alerts.view import EventView, IncidentView
from monitor.core.settings import Strict

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
    settings_model: ClassVar[type[Strict] | None]

    @classmethod
    def configured(cls, settings: AlertSettings) -> Sender | None: ...


SENDERS: dict[str, type[ChannelSender]] = {}
S = TypeVar("S", bound=type[ChannelSender])


def register_sender(cls: S) -> S:
    """Class decorator: make a channel's sender known to `alerts.senders.build_senders` (mypy checks
    that the class is a `ChannelSender`)."""
    SENDERS[cls.channel] = cls
    return cls


_send_thread = threading.local()  # `deadline`: the time.monotonic() at which the caller gives up on this call
T = TypeVar("T")


def deadline_passed() -> bool:
    """Whether the caller has given up on the call running in this thread. A sender that makes several
    requests checks before each, so an abandoned send never posts after the next try has begun."""
    deadline: float | None = getattr(_send_thread, "deadline", None)
    return deadline is not None and time.monotonic() > deadline


def run_within(seconds: float, call: Callable[[], T], name: str, done: Callable[[], None] | None = None) -> T:
    """`call()` in its own daemon thread, waited for at most `seconds` in all (then TimeoutError).

    Client timeouts (slack_sdk's, httpx's, smtplib's) are per read, so a server answering one byte at a
    time holds a plain call forever. The abandoned thread runs on until its client gives up; `done`
    runs when it ends.
    """
    outcome: list[tuple[bool, Any]] = []
    deadline = time.monotonic() + seconds

    def run() -> None:
        _send_thread.deadline = deadline
        try:
            outcome.append((True, call()))
        except BaseException as exc:  # handed to the waiting caller
            outcome.append((False, exc))
        finally:
            if done is not None:
                done()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    thread.join(seconds)
    if not outcome:
        raise TimeoutError(f"no complete answer within {seconds:g} s")
    ok, value = outcome[0]
    if not ok:
        raise value
    return cast(T, value)


class Deadlines:
    """The deliver job's senders, each send bounded by `send_deadline_seconds` in all (`run_within`).

    Past the deadline a send counts as a network failure that may have landed: the next try checks
    first (`maybe_sent`), and the abandoned thread makes no further request (`deadline_passed`). At
    most `abandoned_per_channel` abandoned threads hang on one channel; beyond that its sends are
    retried later instead of piling up threads.
    """

    def __init__(self, abandoned_per_channel: int = 4) -> None:
        self._limit = abandoned_per_channel
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()

    def send(self, sender: Sender, job: AlertJob, seconds: float) -> Delivered:
        with self._lock:
            slot = self._slots.setdefault(job.channel, threading.BoundedSemaphore(self._limit))
        if not slot.acquire(blocking=False):
            raise RetryableError(f"{self._limit} earlier sends on {job.channel} are still hanging")
        try:
            return run_within(seconds, lambda: sender.send(job), f"send-{job.channel}-{job.message_id}", slot.release)
        except TimeoutError:
            raise RetryableError(f"no complete answer within send_deadline_seconds={seconds:g}; "
                                 "it may have landed, so the next try checks first") from None
