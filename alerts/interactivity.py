"""Slack button clicks: verified, parsed, and run as the same actions as the web pages and the CLI.

Clicks arrive either as signed HTTP POSTs (`make_slack_router`, mounted by the web app at
`POST /slack/actions`; set the app's Interactivity Request URL to it) or over Socket Mode
(`start_socket_mode`, no public URL needed; the daemon starts it when `slack_app_token` is set).
Both end in `dispatch`. HTTP requests must carry a valid `X-Slack-Signature` over the raw body made
with the signing secret, with an `X-Slack-Request-Timestamp` within 5 minutes of our clock
(slack_sdk's SignatureVerifier); anything else is answered 401 and changes nothing.

The clicking Slack user acts as the flarewatch user whose `users.slack_user_id` matches; the click
runs through `alerts.actions.perform`, so the role rules are those of the web app, the API and the
CLI (managers and admins change incidents, agents may claim posts), and clicks by deactivated or
unlinked Slack users are refused. Every action is recorded on the incident timeline with that actor
and `via: slack`. Everyone sees the result in the edited parent message;
only the clicker gets an ephemeral reply when a click changed nothing (and why: "already claimed
by grace") or when they claimed a post (which one, with a link when `web_base_url` is set).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from slack_sdk.errors import SlackApiError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from alerts import actions
from alerts.actions import ActionError, ActionResult
from alerts.blocks import ACK, CLAIM, RESOLVE, SNOOZE
from alerts.escape import escape_mrkdwn, link
from alerts.settings import AlertSettings
from alerts.slack import make_client
from monitor.core.clock import Clock
from monitor.core.storage.db import transaction
from monitor.core.storage.schema import SlackThread, User

log = logging.getLogger(__name__)

SNOOZE_MINUTES = 60
CLAIM_MINUTES = 30.0
MAX_SKEW_SECONDS = 300
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


def parse_block_actions(payload: Mapping[str, Any]) -> list[Click]:
    """The button clicks in a block_actions payload (with or without the echoed message)."""
    if payload.get("type") != "block_actions":
        return []
    user = payload.get("user") or {}
    if not isinstance(user, Mapping) or not isinstance(user.get("id"), str):
        raise InvalidPayload("block_actions payload without user.id")
    container = payload.get("container") or {}
    message = payload.get("message") or {}
    channel = payload.get("channel") or {}
    channel_id = container.get("channel_id") or channel.get("id")
    message_ts = container.get("message_ts") or message.get("ts")
    clicks = []
    for action in payload.get("actions") or []:
        if isinstance(action, Mapping) and isinstance(action.get("action_id"), str):
            clicks.append(Click(action["action_id"], action.get("value"), action.get("block_id"), user["id"],
                                channel_id, message_ts))
    return clicks


def payload_from_form(body: bytes) -> dict[str, Any]:
    """Slack posts `payload=<url-encoded JSON>` as application/x-www-form-urlencoded."""
    try:
        form = parse_qs(body.decode("utf-8"), strict_parsing=True)
        payload = json.loads(form["payload"][0])
    except (UnicodeDecodeError, ValueError, KeyError, IndexError) as exc:
        raise InvalidPayload(f"not a Slack interactivity request: {exc}") from None
    if not isinstance(payload, dict):
        raise InvalidPayload("payload is not a JSON object")
    return payload


class _FixedClock:
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


def verify_signature(signing_secret: str, body: bytes, headers: Mapping[str, str], now: float) -> bool:
    """Slack's v0 request signature, checked at `now` (unix seconds): valid, fresh, constant-time compare."""
    from slack_sdk.signature import SignatureVerifier

    try:
        return SignatureVerifier(signing_secret, clock=_FixedClock(now)).is_valid_request(body, dict(headers))
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
    try:
        value_id = int(str(click.value or "").split(":")[0])
    except ValueError:
        raise ActionError(f"button value {click.value!r} names no incident") from None
    if click.channel_id and click.message_ts:
        thread = session.scalar(select(SlackThread).where(
            SlackThread.ts == click.message_ts,
            (SlackThread.channel_id == click.channel_id) | (SlackThread.channel == click.channel_id)))
        if thread is not None and thread.incident_id != value_id:
            raise ActionError("the button does not belong to this incident's message")
    return value_id


def run_click(session: Session, settings: AlertSettings, click: Click, now: Any,
              brands: list[str] | None = None) -> ActionResult:
    """A button click as an `IncidentAction`, run through `actions.perform` (same role rules as everywhere)."""
    actor = actor_for(session, click.user_id)
    incident_id = _incident_id(session, click)
    if click.action_id == ACK:
        action = actions.IncidentAction("acknowledge", incident_id)
    elif click.action_id == SNOOZE:
        action = actions.IncidentAction("snooze", incident_id, until=now + timedelta(minutes=SNOOZE_MINUTES))
    elif click.action_id == RESOLVE:
        action = actions.IncidentAction("resolve", incident_id)
    elif click.action_id == CLAIM:
        parts = str(click.value or "").split(":")
        post_id = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        action = actions.IncidentAction("claim", incident_id, post_id=post_id, claim_minutes=CLAIM_MINUTES)
    else:
        raise ActionError(f"unknown action {click.action_id!r}")
    if actor.startswith("slack:"):
        raise actions.ActionForbidden(f"your Slack account is not linked to a flarewatch user (an admin can run "
                                      f"`flarewatch users set NAME --slack-id {click.user_id}`)")
    return actions.perform(session, action, actor, now, settings=settings, brands=brands or [], via="slack")


def dispatch(sessions: sessionmaker[Session], settings: AlertSettings, clock: Clock,
             payload: Mapping[str, Any]) -> list[ActionResult]:
    """Run every flarewatch button in a block_actions payload; others' buttons are ignored."""
    results = []
    for click in parse_block_actions(payload):
        if click.action_id not in (ACK, SNOOZE, RESOLVE, CLAIM):
            log.info("ignoring Slack action %r (not a flarewatch button)", click.action_id)
            continue
        try:
            with transaction(sessions) as session:
                result = run_click(session, settings, click, clock.now())
        except ActionError as exc:
            result = ActionResult(None, False, str(exc))
        log.info("Slack %s by %s: %s", click.action_id, click.user_id, result.message)
        if not result.changed or click.action_id == CLAIM:
            reply_to_clicker(settings, click, result)
        results.append(result)
    return results


def reply_to_clicker(settings: AlertSettings, click: Click, result: ActionResult) -> None:
    """An ephemeral message only the clicker sees. Best effort: the action has already happened."""
    if not settings.slack_bot_token or not click.channel_id:
        return
    text = (":white_check_mark: " if result.changed else ":warning: ") + escape_mrkdwn(result.message)
    if result.changed and result.post_id is not None and settings.web_base_url:
        text += " · " + link(f"{settings.web_base_url.rstrip('/')}/posts/{result.post_id}", "open the post")
    try:
        make_client(settings).chat_postEphemeral(channel=click.channel_id, user=click.user_id, text=text)
    except (SlackApiError, OSError) as exc:
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
        try:
            payload = payload_from_form(body)
        except InvalidPayload as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        results = await run_in_threadpool(dispatch, sessions, settings, clock, payload)
        # Slack shows nobody this body; the parent message's edit is the visible answer.
        return JSONResponse({"ok": True, "results": [r.message for r in results]})

    return router


def start_socket_mode(sessions: sessionmaker[Session], settings: AlertSettings, clock: Clock,
                      web_client: Any = None) -> Any:
    """Connect to Slack over Socket Mode and handle button clicks; returns the client (call `.close()`)."""
    from slack_sdk.socket_mode import SocketModeClient
    from slack_sdk.socket_mode.request import SocketModeRequest
    from slack_sdk.socket_mode.response import SocketModeResponse

    if not settings.slack_app_token:
        raise ValueError("Socket Mode needs alerts.slack_app_token (an xapp-… app-level token)")
    client = SocketModeClient(app_token=settings.slack_app_token.get_secret_value(), web_client=web_client or make_client(settings))

    def on_request(socket: SocketModeClient, request: SocketModeRequest) -> None:
        # Acknowledge first (Slack wants it within 3 s), then act.
        socket.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))
        if request.type == "interactive" and isinstance(request.payload, dict):
            dispatch(sessions, settings, clock, request.payload)

    client.socket_mode_request_listeners.append(on_request)
    client.connect()
    return client
