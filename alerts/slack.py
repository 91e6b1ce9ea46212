"""Slack delivery through slack_sdk's WebClient (`base_url` configurable, so tests use a local server).

Places are channel ids (C…/G…), channel names (#alerts, resolved once with conversations.list) or
user ids (U…, a direct message opened with conversations.open). Every message we post carries its
outbox idempotency key in `metadata`, which is how a resend after a crash or timeout finds the
message that already landed (conversations.history / conversations.replies with
include_all_metadata) instead of posting a duplicate. Scopes: chat:write, channels:read,
groups:read, channels:history, groups:history, im:history, im:write.

Pacing: at most one chat.postMessage per conversation every `slack_seconds_per_message` (Slack's
special tier allows about one per second); after a 429 the conversation is left alone for the whole
`Retry-After`, while other conversations carry on.
"""
from __future__ import annotations

import http.client
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.error import URLError

from pydantic import Field, SecretStr
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from alerts.base import AlertJob, Deferred, Delivered, PermanentError, RetryableError, ThreadRef, deadline_passed, run_within
from alerts.blocks import parent_message, reply_message
from alerts.base import register_sender
from alerts.settings import AlertSettings
from monitor.core.http_outcome import Outcome, classify, retry_after
from monitor.core.settings import Strict

log = logging.getLogger(__name__)

METADATA_EVENT = "flarewatch_alert"
RETRYABLE_CODES = frozenset({
    "ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable", "request_timeout",
})
LOOKBACK = timedelta(minutes=2)  # clock skew allowance when searching history for an earlier try


class SlackSettings(Strict):
    """The Slack channel's own settings. Users write them as the flat `slack_*` keys of [alerts]
    (kept for existing files); `SlackSettings.of` gathers them."""

    bot_token: SecretStr
    base_url: str = "https://slack.com/api/"
    timeout_seconds: float = Field(default=10, gt=0)
    seconds_per_message: float = Field(default=1.0, ge=0)

    @classmethod
    def of(cls, alerts: AlertSettings) -> SlackSettings | None:
        if alerts.slack_bot_token is None:
            return None
        return cls(bot_token=alerts.slack_bot_token, base_url=alerts.slack_base_url,
                   timeout_seconds=alerts.slack_timeout_seconds, seconds_per_message=alerts.slack_seconds_per_message)


def _slack(settings: SlackSettings | AlertSettings) -> SlackSettings:
    own = settings if isinstance(settings, SlackSettings) else SlackSettings.of(settings)
    if own is None:
        raise ValueError("Slack is not configured: set alerts.slack_bot_token")
    return own


def make_client(settings: SlackSettings | AlertSettings) -> WebClient:
    # retry_handlers=[]: the outbox worker retries, after checking nothing landed; a silent in-client
    # retry after a connection reset could post twice.
    s = _slack(settings)
    return WebClient(token=s.bot_token.get_secret_value(), base_url=s.base_url,
                     timeout=int(max(1, s.timeout_seconds)), retry_handlers=[])


class PostError(Exception):
    """A message posted outside the outbox did not land; the text says why, for the person who asked."""


def post_message(settings: AlertSettings, message: dict[str, Any], channel: str | None = None) -> str:
    """Post one message (`text` and `blocks`) straight away, outside the outbox; returns its ts.

    For messages nobody waits on exactly once, such as the weekly digest.
    """
    if not settings.slack_enabled:
        raise PostError("Slack is not configured: set alerts.slack_bot_token")
    client = make_client(settings)
    try:
        response = run_within(settings.send_deadline_seconds, lambda: client.chat_postMessage(
            channel=channel or settings.default_channel, text=message["text"], blocks=message["blocks"],
            unfurl_links=False, unfurl_media=False), "slack-post")
    except TimeoutError:
        raise PostError(f"Slack did not answer within send_deadline_seconds={settings.send_deadline_seconds:g}") from None
    except SlackApiError as exc:
        raise PostError(f"Slack refused the message: {exc.response.get('error')}") from None
    except OSError as exc:
        raise PostError(f"Slack unreachable: {exc}") from None
    return str(response["ts"])


def _retry_after(headers: Mapping[str, object] | None, now: datetime) -> float:
    """Slack's Retry-After (seconds); at least one second, one when it does not say."""
    wait = retry_after(headers, now.timestamp())
    return max(1.0, 1.0 if wait is None else wait)


@dataclass(frozen=True)
class SlackAuth:
    """What `auth.test` said about the bot token."""

    ok: bool
    checked_at: datetime
    error: str | None = None
    team: str | None = None
    bot_user: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checked_at": self.checked_at.isoformat(), "error": self.error, "team": self.team,
                "bot_user": self.bot_user}


def check_auth(settings: AlertSettings, now: datetime, client: WebClient | None = None) -> SlackAuth:
    """Try the bot token with `auth.test` (the daemon does at start), so a bad token shows before the first alert."""
    slack = client or make_client(settings)
    try:
        answer = run_within(settings.send_deadline_seconds, slack.auth_test, "slack-auth")
    except TimeoutError:
        return SlackAuth(False, now, f"Slack did not answer within send_deadline_seconds={settings.send_deadline_seconds:g}")
    except SlackApiError as exc:
        code = exc.response.get("error") if isinstance(exc.response.data, dict) else None
        if exc.response.status_code >= 500 and not code:
            return SlackAuth(False, now, f"Slack answered HTTP {exc.response.status_code}")
        return SlackAuth(False, now, f"Slack refused the token: {code or exc.response.status_code}")
    except (URLError, OSError, http.client.HTTPException, json.JSONDecodeError) as exc:
        return SlackAuth(False, now, f"Slack unreachable: {type(exc).__name__}: {exc}"[:300])
    return SlackAuth(True, now, None, str(answer.get("team") or ""), str(answer.get("user") or ""))


@register_sender
class SlackSender:
    channel: ClassVar[str] = "slack"
    settings_model: ClassVar[type[Strict] | None] = SlackSettings

    def __init__(self, settings: SlackSettings | AlertSettings, client: WebClient | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        own = _slack(settings)
        self.client = client or make_client(own)
        self.interval = own.seconds_per_message
        self._sleep = sleep
        self._last_post: dict[str, float] = {}  # conversation -> time.monotonic() of the last post
        self._blocked_until: dict[str, datetime] = {}  # conversation -> end of its Retry-After
        self._conversations: dict[str, str] = {}  # place -> conversation id

    @classmethod
    def configured(cls, settings: AlertSettings) -> SlackSender | None:
        own = SlackSettings.of(settings)
        return cls(own) if own is not None else None

    # --- calls -------------------------------------------------------------------------------

    def _call(self, method: Callable[..., Any], conversation: str | None, now: datetime, **kwargs: Any) -> Any:
        if deadline_passed():  # the worker gave up on this send and may already be on its next try
            raise RetryableError("send deadline passed")
        try:
            return method(**kwargs)
        except SlackApiError as exc:
            status = exc.response.status_code
            code = exc.response.get("error") if isinstance(exc.response.data, dict) else None
            outcome = classify(status)
            if outcome is Outcome.RATE_LIMITED or code in ("ratelimited", "rate_limited"):
                wait = _retry_after(exc.response.headers, now)
                if conversation:
                    self._blocked_until[conversation] = now + timedelta(seconds=wait)
                raise RetryableError(f"Slack rate limit ({code or status}), retry after {wait:g}s", wait) from None
            if outcome is Outcome.TRANSIENT or code in RETRYABLE_CODES:
                raise RetryableError(f"Slack error {status} {code or ''}".strip()) from None
            raise PermanentError(f"Slack refused the message: {code or status}") from None
        except (URLError, OSError, http.client.HTTPException, json.JSONDecodeError) as exc:
            # Includes timeouts: the request may have landed, so the next try checks first (attempt > 1).
            raise RetryableError(f"Slack unreachable: {exc!r}") from None

    def _conversation(self, place: str, now: datetime) -> str:
        if place in self._conversations:
            return self._conversations[place]
        if place.startswith("#"):
            conversation = self._find_channel(place[1:], now)
        elif place[0] in "UW":
            conversation = self._call(self.client.conversations_open, None, now, users=place)["channel"]["id"]
        else:
            conversation = place
        self._conversations[place] = conversation
        return conversation

    def _find_channel(self, name: str, now: datetime) -> str:
        cursor = None
        while True:
            page = self._call(self.client.conversations_list, None, now, types="public_channel,private_channel",
                              exclude_archived=True, limit=1000, cursor=cursor)
            for channel in page.get("channels", []):
                if channel.get("name") == name:
                    return str(channel["id"])
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                raise PermanentError(f"Slack channel #{name} not found (or the bot cannot see it)")

    def _pace(self, conversation: str, now: datetime) -> None:
        blocked = self._blocked_until.get(conversation)
        if blocked is not None and blocked > now:
            raise Deferred(f"{conversation} is rate limited", (blocked - now).total_seconds())
        last = self._last_post.get(conversation)
        if last is not None and self.interval > 0:
            wait = self.interval - (time.monotonic() - last)
            if wait > 0:
                self._sleep(wait)

    def _posted(self, conversation: str) -> None:
        self._last_post[conversation] = time.monotonic()

    def _find_sent(self, job: AlertJob, conversation: str, thread_ts: str | None) -> str | None:
        """The ts of a message an earlier attempt already posted for this job, if any."""
        oldest = f"{(job.created_at - LOOKBACK).timestamp():.6f}"
        cursor = None
        for _ in range(20):  # pages of 200: far more than one incident's messages in minutes
            if thread_ts is None:
                page = self._call(self.client.conversations_history, conversation, job.now, channel=conversation,
                                  oldest=oldest, include_all_metadata=True, limit=200, cursor=cursor)
            else:
                page = self._call(self.client.conversations_replies, conversation, job.now, channel=conversation,
                                  ts=thread_ts, oldest=oldest, include_all_metadata=True, limit=200, cursor=cursor)
            for message in page.get("messages", []):
                payload = (message.get("metadata") or {}).get("event_payload") or {}
                if payload.get("key") == job.idempotency_key:
                    return str(message["ts"])
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None
        return None

    # --- the sender protocol -----------------------------------------------------------------

    def send(self, job: AlertJob) -> Delivered:
        metadata = {"event_type": METADATA_EVENT,
                    "event_payload": {"key": job.idempotency_key, "incident_id": job.view.id}}
        if job.kind == "parent":
            conversation = self._conversation(job.target, job.now)
            self._pace(conversation, job.now)
            if job.maybe_sent and (ts := self._find_sent(job, conversation, None)):
                log.info("alert %s was already posted as %s; not posting again", job.message_id, ts)
                return Delivered(f"{conversation}:{ts}", ThreadRef(conversation, ts))
            message = parent_message(job.view, job.now)
            response = self._call(self.client.chat_postMessage, conversation, job.now, channel=conversation,
                                  text=message["text"], blocks=message["blocks"], unfurl_links=False,
                                  unfurl_media=False, metadata=metadata)
            self._posted(conversation)
            channel, ts = str(response["channel"]), str(response["ts"])
            return Delivered(f"{channel}:{ts}", ThreadRef(channel, ts))
        if job.thread is None:
            raise PermanentError(f"{job.kind} without a parent message")
        conversation, parent_ts = job.thread.channel_id, job.thread.ts
        if job.kind == "update":
            message = parent_message(job.view, job.now)
            self._call(self.client.chat_update, conversation, job.now, channel=conversation, ts=parent_ts,
                       text=message["text"], blocks=message["blocks"])
            return Delivered(f"{conversation}:{parent_ts}")
        if job.kind == "reply":
            if job.event is None:
                raise PermanentError("a thread reply needs its event")
            self._pace(conversation, job.now)
            if job.maybe_sent and (ts := self._find_sent(job, conversation, parent_ts)):
                return Delivered(f"{conversation}:{ts}")
            reply = reply_message(job.view, job.event)
            response = self._call(self.client.chat_postMessage, conversation, job.now, channel=conversation,
                                  thread_ts=parent_ts, text=reply["text"], reply_broadcast=reply["reply_broadcast"],
                                  unfurl_links=False, unfurl_media=False, metadata=metadata)
            self._posted(conversation)
            return Delivered(f"{conversation}:{response['ts']}")
        raise PermanentError(f"unknown Slack message kind {job.kind!r}")
