"""The outbox worker: sends queued alerts exactly once, in order, within Slack's rate limits.

How "exactly once" holds:

* A message is queued in the same transaction as the incident change (`alerts.routing.notify`), with
  a unique idempotency key, so an alert exists if and only if the change committed.
* Before sending, the worker *claims* the row in its own committed transaction: status `sending`,
  `attempts + 1`, and a lease (`next_attempt_at = now + LEASE`). Only then does it call the service;
  the result is recorded (`sent` + `external_ref`, and the Slack thread for a parent message) in a
  second transaction.
* If the process dies between the call and that record, the row stays `sending` with its attempt
  counted. When the lease runs out (or at start-up, `release_claims`), it is claimed again with
  `attempt > 1`, which tells the sender the earlier try may have landed. The Slack sender then looks
  for a message carrying the row's idempotency key in its `metadata` (conversations.history for a
  parent or DM, conversations.replies inside the thread) and adopts it instead of posting again;
  chat.update is naturally idempotent; webhooks carry an `Idempotency-Key` header and e-mails a
  Message-ID derived from the key, so receivers can drop repeats. The same check covers a timeout
  whose request did reach Slack.
* Messages of one incident in one place go strictly in queue order (a reply never overtakes its
  parent; a later row waits while an earlier one is pending), so one incident = one thread.
* A parent that failed for good (a long outage) does not doom its thread: the next update or reply
  of that incident and place re-creates it first, under the failed parent's own idempotency key and
  after checking the history for it (that parent may have landed), then goes on as usual. An update
  is then done (the new parent shows the current state); a reply is posted into the new thread.

Retries: network errors and 5xx back off exponentially (5 s doubling, at most 15 min, `max_attempts`
then `failed`); HTTP 429 waits exactly `Retry-After` and gives its attempt back (a rate-limited
request was not processed, so an hour of 429s cannot use up the attempts a later 5xx needs); other API errors
(channel_not_found, invalid_auth, …) fail at once with the reason in `last_error`. One worker process
is assumed (the daemon's deliver job).

Failures are state, not just log lines: a failed message (and the first retried one per place) is
written on the incident's timeline (`alerts.health`), and a failed message is queued again on
`alerts.fallback` when one is configured (once per incident event).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from alerts.base import AlertJob, Deferred, Delivered, PermanentError, RetryableError, ThreadRef
from alerts.health import record_delivery_problem
from alerts.outbox import enqueue
from alerts.senders import Senders
from alerts.settings import AlertSettings
from alerts.view import event_view, incident_view
from monitor.core.clock import Clock
from monitor.core.enums import OutboxStatus
from monitor.core.storage.db import affected, transaction
from monitor.core.storage.schema import Incident, IncidentEvent, OutboxMessage, SlackThread

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)  # far above one send (Slack timeout 10 s + a history lookup)
BACKOFF_FIRST = timedelta(seconds=5)
BACKOFF_MAX = timedelta(minutes=15)
SCAN_ROWS = 2000  # unsent rows looked at per run, to find each (incident, place)'s head


def backoff(attempt: int) -> timedelta:
    return min(BACKOFF_FIRST * (1 << max(attempt - 1, 0)), BACKOFF_MAX)  # doubling: 5 s, 10 s, 20 s…


def release_claims(sessions: sessionmaker[Session], clock: Clock) -> int:
    """At start-up: make rows a dead process was sending due now (they keep their attempt count)."""
    with transaction(sessions) as session:
        result = session.execute(
            update(OutboxMessage).where(OutboxMessage.status == OutboxStatus.SENDING).values(next_attempt_at=clock.now())
        )
        return affected(result)


def _due_heads(session: Session, now: datetime, limit: int) -> list[tuple[int, str, datetime]]:
    rows = session.execute(
        select(OutboxMessage.id, OutboxMessage.incident_id, OutboxMessage.channel, OutboxMessage.target,
               OutboxMessage.status, OutboxMessage.next_attempt_at)
        .where(OutboxMessage.status.in_((OutboxStatus.PENDING, OutboxStatus.SENDING)))
        .order_by(OutboxMessage.id)
        .limit(SCAN_ROWS)
    ).all()
    heads: dict[tuple[int | None, str, str], tuple[int, str, datetime]] = {}
    for row in rows:
        heads.setdefault((row.incident_id, row.channel, row.target), (row.id, row.status, row.next_attempt_at))
    return [head for head in heads.values() if head[2] <= now][:limit]


def _claim(sessions: sessionmaker[Session], message_id: int, status: str, due: datetime, now: datetime) -> bool:
    with transaction(sessions) as session:
        result = session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, OutboxMessage.status == status,
                   OutboxMessage.next_attempt_at == due)
            .values(status=OutboxStatus.SENDING, attempts=OutboxMessage.attempts + 1, next_attempt_at=now + LEASE)
        )
        return affected(result) == 1


@dataclass(frozen=True)
class _Recreate:
    """This send re-creates the incident's missing parent message before `kind` can be done."""

    kind: str  # the row's own kind: update (done by the new parent) or reply (sent next, into the thread)
    parent_id: int | None  # the failed parent row, marked sent once its message exists


def _job(session: Session, message: OutboxMessage, settings: AlertSettings,
         now: datetime) -> tuple[AlertJob, _Recreate | None]:
    incident = session.get(Incident, message.incident_id) if message.incident_id is not None else None
    if incident is None:
        raise PermanentError("the incident no longer exists")
    event = session.get(IncidentEvent, message.event_id) if message.event_id is not None else None
    view = incident_view(session, incident, now, settings.top_posts, settings.web_base_url)
    job = AlertJob(
        message_id=message.id, idempotency_key=message.idempotency_key, channel=message.channel,
        target=message.target, kind=message.kind, attempt=message.attempts, created_at=message.created_at, now=now,
        view=view, event=event_view(event) if event is not None else None,
    )
    if message.channel != "slack" or message.kind == "parent":
        return job, None
    row = session.get(SlackThread, (incident.id, message.target))
    if row is not None:
        return replace(job, thread=ThreadRef(row.channel_id or row.channel, row.ts)), None
    parent = session.scalar(
        select(OutboxMessage)
        .where(OutboxMessage.incident_id == incident.id, OutboxMessage.channel == "slack",
               OutboxMessage.target == message.target, OutboxMessage.kind == "parent", OutboxMessage.id < message.id)
        .order_by(OutboxMessage.id.desc()).limit(1)
    )
    if parent is None:  # never queued (the place was added later): a parent of this row's own
        return replace(job, kind="parent", idempotency_key=f"{message.idempotency_key}:parent"), \
            _Recreate(message.kind, None)
    # The failed parent's key, and a history check first: one of its attempts may have landed.
    return replace(job, kind="parent", idempotency_key=parent.idempotency_key, created_at=parent.created_at,
                   attempt=max(message.attempts, parent.attempts, 2)), _Recreate(message.kind, parent.id)


def _finish(sessions: sessionmaker[Session], message_id: int, attempt: int, values: dict[str, Any],
            thread: ThreadRef | None = None, *, problem: tuple[str, bool] | None = None,
            settings: AlertSettings | None = None, now: datetime | None = None) -> None:
    """Record a send's outcome; `problem` (error, permanent) also goes on the incident's timeline."""
    with transaction(sessions) as session:
        result = session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, OutboxMessage.status == OutboxStatus.SENDING, OutboxMessage.attempts == attempt)
            .values(**values)
        )
        if affected(result) != 1:
            log.warning("outbox %s changed while it was being sent; leaving it as it is", message_id)
            return
        message = session.get(OutboxMessage, message_id)
        assert message is not None
        if thread is not None:
            assert message.incident_id is not None
            session.merge(SlackThread(incident_id=message.incident_id, channel=message.target,
                                      ts=thread.ts, channel_id=thread.channel_id))
        if problem is not None and now is not None:
            record_delivery_problem(session, message, problem[0], problem[1], now)
            if problem[1] and settings is not None:
                _fall_back(session, settings, message, now)


def _fall_back(session: Session, settings: AlertSettings, message: OutboxMessage, now: datetime) -> None:
    """Queue what the primary channel could not deliver on `alerts.fallback` (once per incident event)."""
    fallback = settings.fallback
    if fallback is None or message.incident_id is None or message.event_id is None or message.kind == "update":
        return  # a failed edit of a Slack parent loses no news: the event itself has its own reply
    if (message.channel, message.target) == (fallback.channel, fallback.target) or message.payload.get("fallback_for"):
        return
    incident = session.get(Incident, message.incident_id)
    event = session.get(IncidentEvent, message.event_id)
    if incident is None or event is None:
        return
    enqueue(session, incident, event, fallback.channel, fallback.target, event.kind,
            {"event": event.kind, "fallback_for": message.id, "failed_place": f"{message.channel} {message.target}"},
            now, key=f"incident:{incident.id}:event:{event.id}:fallback")


def _mark_recreated(sessions: sessionmaker[Session], recreate: _Recreate | None, by: int, ref: str | None,
                    at: datetime) -> None:
    """The failed parent row now has its message (bookkeeping only: the thread is already recorded)."""
    if recreate is None or recreate.parent_id is None:
        return
    with transaction(sessions) as session:
        session.execute(
            update(OutboxMessage).where(OutboxMessage.id == recreate.parent_id, OutboxMessage.status == OutboxStatus.FAILED)
            .values(status=OutboxStatus.SENT, sent_at=at, external_ref=ref, last_error=f"re-created by outbox message {by}")
        )


def deliver_pending(sessions: sessionmaker[Session], senders: Senders, clock: Clock, limit: int = 50) -> int:
    """Send up to `limit` due outbox messages; returns how many were sent."""
    settings = senders.settings
    with sessions() as session:
        due = _due_heads(session, clock.now(), limit)
    sent = 0
    for message_id, status, due_at in due:
        now = clock.now()
        if not _claim(sessions, message_id, status, due_at, now):
            continue
        with sessions() as session:
            message = session.get(OutboxMessage, message_id)
            assert message is not None
            attempt, channel = message.attempts, message.channel
            recreate: _Recreate | None = None
            try:
                job: AlertJob | None
                job, recreate = _job(session, message, settings, now)
            except PermanentError as exc:
                job, failure = None, str(exc)
        if job is None:
            _finish(sessions, message_id, attempt, {"status": OutboxStatus.FAILED, "last_error": failure},
                    problem=(failure, True), settings=settings, now=now)
            continue
        sender = senders.get(channel)
        try:
            if sender is None:
                raise PermanentError(f"no sender configured for channel {channel!r}")
            result: Delivered = senders.deadlines.send(sender, job, settings.send_deadline_seconds)
        except Deferred as exc:
            _finish(sessions, message_id, attempt, {
                "status": OutboxStatus.PENDING, "attempts": attempt - 1,
                "next_attempt_at": clock.now() + timedelta(seconds=exc.seconds)})
        except RetryableError as exc:
            if exc.retry_after is not None:  # rate limited: not processed, so the attempt is given back
                log.warning("alert %s: %s", message_id, exc)
                _finish(sessions, message_id, attempt, {
                    "status": OutboxStatus.PENDING, "attempts": attempt - 1, "last_error": str(exc),
                    "next_attempt_at": clock.now() + timedelta(seconds=exc.retry_after)})
            elif attempt >= settings.max_attempts:
                log.error("alert %s failed after %d attempts: %s", message_id, attempt, exc)
                _finish(sessions, message_id, attempt, {"status": OutboxStatus.FAILED, "last_error": str(exc)},
                        problem=(str(exc), True), settings=settings, now=clock.now())
            else:
                wait = backoff(attempt)
                log.warning("alert %s: %s; retrying in %s", message_id, exc, wait)
                _finish(sessions, message_id, attempt, {
                    "status": OutboxStatus.PENDING, "last_error": str(exc), "next_attempt_at": clock.now() + wait},
                    problem=(str(exc), False), now=clock.now())
        except PermanentError as exc:
            log.error("alert %s cannot be delivered: %s", message_id, exc)
            _finish(sessions, message_id, attempt, {"status": OutboxStatus.FAILED, "last_error": str(exc)},
                    problem=(str(exc), True), settings=settings, now=clock.now())
        except Exception as exc:  # a bug in rendering or a sender: keep the row, retry later, say so loudly
            log.exception("alert %s: unexpected error while sending", message_id)
            final = attempt >= settings.max_attempts
            _finish(sessions, message_id, attempt, {
                "status": OutboxStatus.FAILED if final else OutboxStatus.PENDING, "last_error": repr(exc),
                "next_attempt_at": clock.now() + backoff(attempt)},
                problem=(repr(exc), final), settings=settings, now=clock.now())
        else:
            if recreate is not None and recreate.kind == "reply":  # the thread exists again; the reply goes next
                log.warning("alert %s: re-created the incident's failed parent message", message_id)
                _finish(sessions, message_id, attempt,
                        {"status": OutboxStatus.PENDING, "attempts": attempt - 1, "next_attempt_at": clock.now()},
                        result.thread)
                _mark_recreated(sessions, recreate, message_id, result.external_ref, clock.now())
                continue
            _finish(sessions, message_id, attempt,
                    {"status": OutboxStatus.SENT, "sent_at": clock.now(), "external_ref": result.external_ref,
                     "last_error": None},
                    result.thread if job.kind == "parent" else None)
            _mark_recreated(sessions, recreate, message_id, result.external_ref, clock.now())
            sent += 1
    return sent
