"""Block Kit for incident alerts: the parent message (edited as the incident changes) and thread replies.

Everything that came from a post or a person goes through `escape_mrkdwn`/`link`; the only mentions in
a message are the ones built here from validated Slack ids (escalation targets, the clicking user).
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from monitor.core.escape import escape_mrkdwn, link, truncate
from alerts.routing import HUMAN_KINDS
from alerts.summary import (about_line, event_line, headline, severity_label, sparkline, state_line, what_moved,
                            when)
from alerts.view import EventView, IncidentView
from monitor.core.enums import EventKind

ACK, CLAIM, SNOOZE, RESOLVE = "incident_ack", "incident_claim_top", "incident_snooze_1h", "incident_resolve"
ACTION_IDS = (ACK, CLAIM, SNOOZE, RESOLVE)
POST_TEXT_CHARS = 280
SECTION_CHARS = 3000
_SLACK_ID = re.compile(r"[UWS][A-Z0-9]{2,}")
_SEVERITY_EMOJI = {1: ":large_yellow_circle:", 2: ":large_orange_circle:"}


def mention(target: str) -> str:
    """Mention markup for a validated id: S… user group, U…/W… user, or here/channel; '' otherwise."""
    if target in ("here", "channel"):
        return f"<!{target}>"
    if not _SLACK_ID.fullmatch(target):
        return ""
    return f"<!subteam^{target}>" if target.startswith("S") else f"<@{target}>"


def actor_markup(actor: str | None) -> str:
    """`slack:U123` becomes a mention; any other actor (a flarewatch user name) is escaped text."""
    if actor and actor.startswith("slack:") and _SLACK_ID.fullmatch(actor[6:]) and not actor[6:].startswith("S"):
        return f"<@{actor[6:]}>"
    return escape_mrkdwn(actor or "flarewatch", 200)


def _button(action_id: str, label: str, value: str, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button", "action_id": action_id, "value": value,
        "text": {"type": "plain_text", "text": label, "emoji": False},
    }
    if style:
        button["style"] = style
    return button


def _actions(view: IncidentView) -> dict[str, Any] | None:
    if view.status != "open":
        return None
    value = str(view.id)
    elements = []
    if view.acknowledged_by is None:
        elements.append(_button(ACK, "Acknowledge", value, "primary"))
    if view.top_posts:
        elements.append(_button(CLAIM, "Claim top post", f"{view.id}:{view.top_posts[0].id}"))
    elements.append(_button(SNOOZE, "Snooze 1h", value))
    resolve = _button(RESOLVE, "Resolve", value, "danger")
    resolve["confirm"] = {
        "title": {"type": "plain_text", "text": "Resolve incident?"},
        "text": {"type": "plain_text", "text": "This stops all alerts and escalation for this incident."},
        "confirm": {"type": "plain_text", "text": "Resolve"},
        "deny": {"type": "plain_text", "text": "Cancel"},
    }
    elements.append(resolve)
    return {"type": "actions", "block_id": f"incident:{view.id}", "elements": elements}


def _post_block(post: Any) -> dict[str, Any]:
    quoted = "\n".join(f">{line}" for line in escape_mrkdwn(post.text, POST_TEXT_CHARS).splitlines() or [">"])
    head = (f"*{escape_mrkdwn(post.author, 100)}* · reach {post.reach:,} · {escape_mrkdwn(post.source, 60)}"
            f" · {link(post.url, 'open post')}")
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(f"{head}\n{quoted}", SECTION_CHARS)}}


def fallback_text(view: IncidentView) -> str:
    return escape_mrkdwn(f"{headline(view)} — {what_moved(view)}", SECTION_CHARS)


def parent_message(view: IncidentView, now: datetime) -> dict[str, Any]:
    """The incident's parent message: posted once per place, then edited with chat.update."""
    emoji = ":white_check_mark:" if view.status != "open" else _SEVERITY_EMOJI.get(view.severity, ":red_circle:")
    status = escape_mrkdwn(state_line(view, now))
    if view.acknowledged_by:  # show who owns it, as a mention when they came from Slack
        status = status.replace(escape_mrkdwn(view.acknowledged_by), actor_markup(view.acknowledged_by), 1)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": truncate(headline(view), 150), "emoji": True}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"{emoji} *What moved:* {escape_mrkdwn(what_moved(view), 2000)}"},
            "fields": [
                {"type": "mrkdwn", "text": f"*Brand*\n{escape_mrkdwn(view.brand, 200)}"},
                {"type": "mrkdwn", "text": f"*Severity*\n{severity_label(view.severity)}"},
                {"type": "mrkdwn", "text": f"*Started*\n{when(view.started_at)}"},
                {"type": "mrkdwn", "text": f"*Status*\n{truncate(status, 1900)}"},
            ],
        },
    ]
    if view.trend:
        blocks.append({"type": "context", "elements": [{
            "type": "mrkdwn",
            "text": f"Negative posts per minute, last {len(view.trend)} min: `{sparkline(view.trend)}` (peak {max(view.trend)})",
        }]})
    about = about_line(view)
    if about:
        quotes = "\n".join(f">{escape_mrkdwn(' '.join(p.text.split()), 200)} — _{escape_mrkdwn(p.author, 60)}_"
                           for p in view.theme_posts)
        text = f"*{escape_mrkdwn(about, 500)}*" + (f"\n{quotes}" if quotes else "")
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, SECTION_CHARS)}})
    if view.top_posts:
        blocks.append({"type": "divider"})
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": "*Top posts by reach*"}]})
        blocks += [_post_block(post) for post in view.top_posts]
    footer = f"Incident #{view.id}"
    if view.web_url:
        footer += f" · {link(view.web_url, 'timeline')}"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": footer}]})
    actions = _actions(view)
    if actions:
        blocks.append(actions)
    return {"text": fallback_text(view), "blocks": blocks}


def reply_message(view: IncidentView, event: EventView) -> dict[str, Any]:
    """A thread reply for one event; an escalation mentions the level's people and is broadcast to the channel."""
    line = event_line(event, actor_markup(event.actor) if event.actor else None, escape=escape_mrkdwn)
    mentions = " ".join(m for m in (mention(str(t)) for t in event.data.get("mention", [])) if m)
    text = f"{line}. {mentions} please acknowledge." if mentions else f"{line}."
    if event.kind not in HUMAN_KINDS and event.kind != EventKind.CLOSED:  # the numbers, when the numbers are the news
        text += f"\n{escape_mrkdwn(what_moved(view), 1000)}"
    return {"text": truncate(text, SECTION_CHARS), "reply_broadcast": event.kind == "escalated"}
