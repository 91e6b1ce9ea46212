"""Slack button clicks: verified, parsed, and run as the same actions as the web pages and the CLI.

Clicks arrive either as signed HTTP POSTs (`make_slack_router`, mounted by the web app at
`POST /slack/actions`; set the app's Interactivity Request URL to it) or over Socket Mode
(`start_socket_mode`, no public URL needed; the daemon starts it when `slack_app_token` is set).
Both end in `dispatch`. HTTP requests must carry a valid `X-Slack-Signature` over the raw body made
with the signing secret, with an `X-Slack-Request-Timestamp` within 5 minutes of our clock
(slack_sdk's SignatureVerifier); anything else is answered 401 and changes nothing.

The clicking Slack user acts as the flarewatch user whose `users.slack_user_id` matches; the click
runs through `monitor.core.incidents.perform`, so the role rules are those of the web app, the API and the
CLI (managers and admins change incidents, agents may claim posts), and clicks by deactivated or
unlinked Slack users are refused. Every action is recorded on the incident timeline with that actor
and `via: slack`. Everyone sees the result in the edited parent message;
only the clicker gets an ephemeral reply when a click changed nothing (and why: "already claimed
by grace") or when they claimed a post (which one, with a link when `web_base_url` is set).
"""
from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from slack_sdk import signature
from slack_sdk.errors import SlackApiError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from alerts.base import run_within
from alerts.blocks import ACK, CLAIM, RESOLVE, SNOOZE
from alerts.routing import Alerts
from monitor.core import incidents
from monitor.core.escape import escape_mrkdwn, link
from monitor.core.incidents import ActionError, ActionResult, IncidentAction
from alerts.settings import AlertSettings
from alerts.slack import make_client
from monitor.core.boundary import Rejected, decode_json, parse_one
from monitor.core.clock import Clock
from monitor.core.storage.db import transaction
from monitor.core.storage.schema import SlackAction, SlackThread, User

if TYPE_CHECKING:  # Socket Mode is imported when started: it pulls in a websocket client
    from slack_sdk.socket_mode import SocketModeClient
    from slack_sdk.web import WebClient

log = logging.getLogger(__name__)

SNOOZE_MINUTES = 60
CLAIM_MINUTES = 30.0
MAX_SKEW_SECONDS = 300
MAX_ID = 2**63 - 1  # incidents.id and posts.id are bigint
REMEMBER_CLICKS = timedelta(minutes=10)  # twice the signature's freshness window: a replay cannot be older
ALREADY_HANDLED = "this click was already handled"
MAX_BODY = 256 * 1024  # a block_actions payload echoes its message: tens of KB at most


class InvalidPayload(ValueError):
    pass


@dataclass(frozen=True)
class Click:
    action_id: str
    value: str | None
    block_id: str | None
    user_id: str
    channel_id: str | None
    message_ts: str | None
    key: str = ""  # what makes the click idempotent (see `_click_key`)


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


Text = Annotated[str, Field(max_length=255)]


class _User(_Model):
    id: Text


class _Where(_Model):
    channel_id: Text | None = None
    message_ts: Text | None = None


class _Id(_Model):
    id: Text | None = None


class _Ts(_Model):
    ts: Text | None = None


class _Action(_Model):
    action_id: Text
    value: Annotated[str, Field(max_length=2000)] | None = None  # Slack's own limit for a button value
    block_id: Text | None = None
    action_ts: Text | None = None


class _BlockActions(_Model):
    """The part of a block_actions payload we read; anything else in it is ignored, wrong types are not."""

    user: _User
    container: _Where | None = None
    channel: _Id | None = None
    message: _Ts | None = None
    actions: Annotated[list[_Action], Field(max_length=25)] = []


def _clicks(payload: Any) -> list[Click]:
    if not isinstance(payload, Mapping):
        raise InvalidPayload(f"payload is {type(payload).__name__}, not an object")
    if payload.get("type") != "block_actions":
        return []
    try:
        parsed = _BlockActions.model_validate(payload)
    except ValidationError as exc:
        raise InvalidPayload("block_actions payload: " + "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'payload'}: {e['msg']}" for e in exc.errors(include_url=False))) from None
    where = parsed.container or _Where()
    channel_id = where.channel_id or (parsed.channel.id if parsed.channel else None)
    message_ts = where.message_ts or (parsed.message.ts if parsed.message else None)
    return [Click(a.action_id, a.value, a.block_id, parsed.user.id, channel_id, message_ts, _click_key(parsed.user.id, a))
            for a in parsed.actions]


def _click_key(user_id: str, action: _Action) -> str:
    """Who clicked what, when (Slack's action_ts): the same for a replayed request, distinct for a new click."""
    return hashlib.sha256(json.dumps([user_id, action.model_dump()], sort_keys=True).encode()).hexdigest()


def parse_block_actions(payload: Any) -> list[Click]:
    """The button clicks in a block_actions payload (with or without the echoed message).

    The item boundary for clicks: whatever is wrong with a payload (and whatever the parsing raises)
    is an `InvalidPayload` with the reason, answered 400, never a 500.
    """
    result = parse_one(_clicks, payload)
    if isinstance(result, Rejected):
        raise InvalidPayload(result.reason)
    return result


def payload_from_form(body: bytes) -> dict[str, Any]:
    """Slack posts `payload=<url-encoded JSON>` as application/x-www-form-urlencoded."""
    try:
        form = parse_qs(body.decode("utf-8"), strict_parsing=True)
        payload = decode_json(form["payload"][0])
    except (UnicodeDecodeError, ValueError, KeyError, IndexError) as exc:
        raise InvalidPayload(f"not a Slack interactivity request: {exc}") from None
    if not isinstance(payload, dict):
        raise InvalidPayload("payload is not a JSON object")
    return payload


class _FixedClock(signature.Clock):
    """The verifier's clock, stopped at the time we were given (our Clock, not the wall's)."""

    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


def verify_signature(signing_secret: str, body: bytes, headers: Mapping[str, str], now: float) -> bool:
    """Slack's v0 request signature, checked at `now` (unix seconds): valid, fresh, constant-time compare."""
    try:
        return signature.SignatureVerifier(signing_secret, clock=_FixedClock(now)).is_valid_request(body, dict(headers))
    except (ValueError, TypeError):  # a timestamp header that is not a number
        return False


def actor_for(session: Session, slack_user_id: str) -> str:
    user = session.scalar(select(User).where(User.slack_user_id == slack_user_id))
    if user is None:
        return f"slack:{slack_user_id}"
    if not user.active:
        raise ActionError(f"user {user.name} is deactivated")
    return user.name


def _incident_id(session: Session, click: Click) -> int:
    head = str(click.value or "").split(":")[0]
    value_id = int(head) if head.isdigit() and len(head) <= 18 else 0  # beyond bigint cannot be an id
    if not 1 <= value_id <= MAX_ID:
        raise ActionError(f"button value {str(click.value)[:40]!r} names no incident")
    if click.channel_id and click.message_ts:
        thread = session.scalar(select(SlackThread).where(
            SlackThread.ts == click.message_ts,
            (SlackThread.channel_id == click.channel_id) | (SlackThread.channel == click.channel_id)))
        if thread is not None and thread.incident_id != value_id:
            raise ActionError("the button does not belong to this incident's message")
    return value_id


def run_click(session: Session, settings: AlertSettings, click: Click, now: datetime,
              brands: list[str] | None = None) -> ActionResult:
    """A button click as an `IncidentAction`, run through `incidents.perform` (same role rules as everywhere)."""
    actor = actor_for(session, click.user_id)
    incident_id = _incident_id(session, click)
    if click.action_id == ACK:
        action = IncidentAction("acknowledge", incident_id)
    elif click.action_id == SNOOZE:
        action = IncidentAction("snooze", incident_id, until=now + timedelta(minutes=SNOOZE_MINUTES))
    elif click.action_id == RESOLVE:
        action = IncidentAction("resolve", incident_id)
    elif click.action_id == CLAIM:
        parts = str(click.value or "").split(":")
        post_id = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() and len(parts[1]) <= 18 else None
        action = IncidentAction("claim", incident_id, post_id=post_id, claim_minutes=CLAIM_MINUTES)
    else:
        raise ActionError(f"unknown action {click.action_id!r}")
    if actor.startswith("slack:"):
        raise incidents.ActionForbidden(f"your Slack account is not linked to a flarewatch user (an admin can run "
                                      f"`flarewatch users set NAME --slack-id {click.user_id}`)")
    return incidents.perform(session, action, actor, now, alerting=Alerts(settings), brands=brands or [], via="slack")


def _first_time(session: Session, click: Click, now: datetime) -> bool:
    """Record the click (in the action's transaction); False if it was handled before (a replay)."""
    if session.get(SlackAction, click.key) is not None:
        return False
    session.execute(delete(SlackAction).where(SlackAction.received_at < now - REMEMBER_CLICKS))
    session.add(SlackAction(key=click.key, received_at=now))
    session.flush()  # a concurrent twin on another replica fails here (primary key), not after the action
    return True


def dispatch(sessions: sessionmaker[Session], settings: AlertSettings, clock: Clock,
             payload: Mapping[str, Any]) -> list[ActionResult]:
    """Run every flarewatch button in a block_actions payload; others' buttons are ignored."""
    return run_clicks(sessions, settings, clock, parse_block_actions(payload))


def run_clicks(sessions: sessionmaker[Session], settings: AlertSettings, clock: Clock,
               clicks: list[Click]) -> list[ActionResult]:
    """Run each click once: a replay of one already handled (same user, button and action_ts) does nothing."""
    results = []
    for click in clicks:
        if click.action_id not in (ACK, SNOOZE, RESOLVE, CLAIM):
            log.info("ignoring Slack action %r (not a flarewatch button)", click.action_id)
            continue
        try:
            with transaction(sessions) as session:
                now = clock.now()
                if not _first_time(session, click, now):
                    log.info("Slack %s by %s: a replay of a click already handled", click.action_id, click.user_id)
                    results.append(ActionResult(None, False, ALREADY_HANDLED))
                    continue
                result = run_click(session, settings, click, now)
        except ActionError as exc:
            result = ActionResult(None, False, str(exc))
        except IntegrityError:  # another replica recorded the same click first
            results.append(ActionResult(None, False, ALREADY_HANDLED))
            continue
        log.info("Slack %s by %s: %s", click.action_id, click.user_id, result.message)
        if not result.changed or click.action_id == CLAIM:
            reply_to_clicker(settings, click, result)
        results.append(result)
    return results


def reply_to_clicker(settings: AlertSettings, click: Click, result: ActionResult) -> None:
    """An ephemeral message only the clicker sees. Best effort: the action has already happened."""
    channel = click.channel_id
    if not settings.slack_bot_token or not channel:
        return
    text = (":white_check_mark: " if result.changed else ":warning: ") + escape_mrkdwn(result.message)
    if result.changed and result.post_id is not None and settings.web_base_url:
        text += " · " + link(f"{settings.web_base_url.rstrip('/')}/posts/{result.post_id}", "open the post")
    client = make_client(settings)
    try:
        run_within(settings.send_deadline_seconds,
                   lambda: client.chat_postEphemeral(channel=channel, user=click.user_id, text=text), "slack-ephemeral")
    except (SlackApiError, OSError) as exc:  # TimeoutError (the deadline) is an OSError
        log.warning("could not reply to Slack user %s: %s", click.user_id, exc)


def make_slack_router(sessions: sessionmaker[Session], settings: AlertSettings, clock: Clock) -> APIRouter:
    """A FastAPI router with `POST /slack/actions` for Slack's interactivity requests."""
    router = APIRouter()

    # max_body_size: counted while the body streams in, so an unsigned 300 MB upload costs at most
    # MAX_BODY before the 413, and no signature work at all.
    @router.post("/slack/actions", include_in_schema=False, max_body_size=MAX_BODY)
    async def slack_actions(request: Request) -> Response:
        if not settings.slack_signing_secret:
            return JSONResponse({"error": "Slack interactivity is not configured (alerts.slack_signing_secret)"},
                                status_code=404)
        body = await request.body()  # the raw bytes: the signature covers exactly these
        if not verify_signature(settings.slack_signing_secret.get_secret_value(), body, request.headers, clock.now().timestamp()):
            return JSONResponse({"error": "invalid or stale Slack signature"}, status_code=401)
        try:  # validly signed is not well formed: a wrong payload is the sender's error (400), not ours
            clicks = parse_block_actions(payload_from_form(body))
        except InvalidPayload as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        results = await run_in_threadpool(run_clicks, sessions, settings, clock, clicks)
        # Slack shows nobody this body; the parent message's edit is the visible answer.
        return JSONResponse({"ok": True, "results": [r.message for r in results]})

    return router


def start_socket_mode(sessions: sessionmaker[Session], settings: AlertSettings, clock: Clock,
                      web_client: WebClient | None = None) -> SocketModeClient:
    """Connect to Slack over Socket Mode and handle button clicks; returns the client (call `.close()`)."""
    from slack_sdk.socket_mode import SocketModeClient
    from slack_sdk.socket_mode.client import BaseSocketModeClient
    from slack_sdk.socket_mode.request import SocketModeRequest
    from slack_sdk.socket_mode.response import SocketModeResponse

    if not settings.slack_app_token:
        raise ValueError("Socket Mode needs alerts.slack_app_token (an xapp-… app-level token)")
    client = SocketModeClient(app_token=settings.slack_app_token.get_secret_value(), web_client=web_client or make_client(settings))

    def on_request(socket: BaseSocketModeClient, request: SocketModeRequest) -> None:
        # Acknowledge first (Slack wants it within 3 s), then act.
        socket.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))
        if request.type == "interactive" and isinstance(request.payload, dict):
            try:
                dispatch(sessions, settings, clock, request.payload)
            except InvalidPayload as exc:
                log.warning("ignoring a malformed Socket Mode interaction: %s", exc)

    client.socket_mode_request_listeners.append(on_request)
    client.connect()
    return client
