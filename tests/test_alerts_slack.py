"""Slack delivery end to end: real slack_sdk WebClient -> local Slack-compatible server over real sockets."""
from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

import alerts.delivery as delivery
from alerts.blocks import ACTION_IDS
from alerts.delivery import LEASE, deliver_pending, release_claims
from monitor.core.storage.schema import Incident, SlackThread
from tests.alerts_support import (  # noqa: F401 - fixtures
    HOSTILE, add_event, clock, drain, open_incident, outbox, slack, slack_senders, slack_settings,
)
from tests.slack_server import Scripted

POSTS = [
    (HOSTILE, "angry <@U0BOSS> customer", 120_000),
    ("退款太慢了，客服也不回复 😡🇨🇳", "微博用户", 45_000),
    ("meh", "small", 10),
    ("still down", "ops watcher", 9_000),
    ("worst update ever", "critic", 30_000),
    ("six", "sixth", 5),
]


def _all_text(message: dict[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False)


def test_parent_message_shows_what_moved_top_posts_and_buttons(sessions, slack, clock) -> None:
    settings = slack_settings(slack)
    incident_id = open_incident(sessions, settings, clock.now(), posts=POSTS)
    assert deliver_pending(sessions, slack_senders(settings), clock, 50) == 1

    [parent] = slack.parents("C0ALERTS01")
    [call] = slack.calls_to("chat.postMessage")
    assert call.args["unfurl_links"] is False and call.args["unfurl_media"] is False
    assert call.headers["Authorization"] == "Bearer xoxb-test-token"
    body = _all_text(parent)
    assert "acme" in body and "SEV-2" in body
    assert "42 negative posts in 15 minutes, usually about 3" in body
    assert "1 in 100,000 odds" in body  # probability in plain words
    assert "▁" in body and "█" in body  # the trend sparkline
    posts = [b for b in parent["blocks"] if b["type"] == "section" and "reach" in b["text"]["text"]]
    assert len(posts) == 5  # top 5 of 6, by reach
    assert "reach 120,000" in posts[0]["text"]["text"] and "reach 45,000" in posts[1]["text"]["text"]
    assert "<https://social.example/p/1|open post>" in posts[0]["text"]["text"]
    assert "退款太慢了，客服也不回复 😡🇨🇳" in posts[1]["text"]["text"]
    assert "sixth" not in body
    [actions] = [b for b in parent["blocks"] if b["type"] == "actions"]
    assert [e["action_id"] for e in actions["elements"]] == list(ACTION_IDS)
    assert [e["text"]["text"] for e in actions["elements"]] == ["Acknowledge", "Claim top post", "Snooze 1h", "Resolve"]
    assert all(e["value"].startswith(str(incident_id)) for e in actions["elements"])
    assert parent["metadata"]["event_payload"]["incident_id"] == incident_id

    [row] = outbox(sessions)
    assert row.status == "sent" and row.external_ref == f"C0ALERTS01:{parent['ts']}"
    with sessions() as session:
        thread = session.get(SlackThread, (incident_id, "C0ALERTS01"))
        assert thread is not None and thread.ts == parent["ts"] and thread.channel_id == "C0ALERTS01"


def test_untrusted_post_text_can_never_ping(sessions, slack, clock) -> None:
    settings = slack_settings(slack)
    incident_id = open_incident(sessions, settings, clock.now(), posts=POSTS)
    drain(sessions, slack_senders(settings), clock)
    add_event(sessions, settings, incident_id, "grew", clock.advance(timedelta(minutes=1)),
              data={"observed": 60, "note": HOSTILE})
    drain(sessions, slack_senders(settings), clock)

    messages = slack.posts()
    assert len(messages) == 2
    for message in messages:
        assert slack.mentions(message) == []
    body = _all_text(slack.parents()[0])
    assert "&lt;!channel&gt;" in body and "&lt;@U0123ABCD&gt;" in body and "&amp; I want" in body
    assert "&lt;https://evil.example|click me&gt;" in body
    assert "<https://evil.example" not in body
    assert "@\u2060here" in body  # plain @here neutralised too
    assert "&lt;@U0BOSS&gt;" in body  # hostile author name


def test_updates_go_to_the_thread_and_edit_the_parent(sessions, slack, clock) -> None:
    settings = slack_settings(slack)
    senders = slack_senders(settings)
    incident_id = open_incident(sessions, settings, clock.now(), posts=POSTS[:2])
    drain(sessions, senders, clock)
    [parent] = slack.parents()

    add_event(sessions, settings, incident_id, "grew", clock.advance(timedelta(minutes=2)),
              data={"observed": 80}, severity=3, detail={"observed": 80, "expected": 3, "window_minutes": 15})
    add_event(sessions, settings, incident_id, "closed", clock.advance(timedelta(minutes=30)),
              data={"reason": "quiet for 30 min"}, status="closed", closed_at=clock.now())
    drain(sessions, senders, clock)

    assert len(slack.parents()) == 1  # one incident = one thread
    replies = slack.replies(parent["ts"])
    assert [r["text"].split(".")[0] for r in replies] == ["Update: grew (observed 80)", "Closed (quiet for 30 min)"]
    updates = slack.calls_to("chat.update")
    assert len(updates) == 2 and all(c.args["ts"] == parent["ts"] for c in updates)
    edited = slack.parents()[0]
    assert edited["edited"] and "SEV-3" in _all_text(edited) and "[closed]" in _all_text(edited)
    assert not [b for b in edited["blocks"] if b["type"] == "actions"]  # nothing left to click
    with sessions() as session:
        assert session.get(Incident, incident_id).next_escalation_at is None


class Crash(BaseException):
    """The process dies (not an exception anyone handles)."""


def test_crash_after_posting_resends_without_duplicate(sessions, slack, clock, monkeypatch) -> None:
    settings = slack_settings(slack)
    senders = slack_senders(settings)
    incident_id = open_incident(sessions, settings, clock.now(), posts=POSTS[:1])
    real_finish = delivery._finish

    def die_before_recording(sessions_: Any, message_id: int, attempt: int, values: dict, thread: Any = None) -> None:
        if values.get("status") == "sent":
            raise Crash()
        real_finish(sessions_, message_id, attempt, values, thread)

    monkeypatch.setattr(delivery, "_finish", die_before_recording)
    with pytest.raises(Crash):
        deliver_pending(sessions, senders, clock, 50)
    monkeypatch.setattr(delivery, "_finish", real_finish)
    assert len(slack.parents()) == 1
    assert [r.status for r in outbox(sessions)] == ["sending"]

    # A fresh worker (new process: new sender, empty caches) before the lease ends does nothing...
    fresh = slack_senders(settings)
    assert deliver_pending(sessions, fresh, clock, 50) == 0
    # ...and once the lease has run out (or at start-up) it adopts the message that landed.
    clock.advance(LEASE + timedelta(seconds=1))
    assert deliver_pending(sessions, fresh, clock, 50) == 1
    assert len(slack.calls_to("chat.postMessage")) == 1 and len(slack.parents()) == 1
    assert slack.calls_to("conversations.history")
    [row] = outbox(sessions)
    assert row.status == "sent" and row.attempts == 2 and row.external_ref.endswith(slack.parents()[0]["ts"])

    # The thread is known, so the next event replies in it instead of starting another one.
    add_event(sessions, settings, incident_id, "grew", clock.advance(timedelta(minutes=1)), data={"observed": 50})
    drain(sessions, fresh, clock)
    assert len(slack.parents()) == 1 and len(slack.replies(slack.parents()[0]["ts"])) == 1


def test_crash_after_a_reply_resends_without_duplicate(sessions, slack, clock, monkeypatch) -> None:
    settings = slack_settings(slack)
    incident_id = open_incident(sessions, settings, clock.now())
    drain(sessions, slack_senders(settings), clock)
    add_event(sessions, settings, incident_id, "grew", clock.advance(timedelta(minutes=1)), data={"observed": 50})
    real_finish = delivery._finish

    def die_after_reply(sessions_: Any, message_id: int, attempt: int, values: dict, thread: Any = None) -> None:
        if values.get("status") == "sent" and slack.replies(slack.parents()[0]["ts"]):
            raise Crash()
        real_finish(sessions_, message_id, attempt, values, thread)

    monkeypatch.setattr(delivery, "_finish", die_after_reply)
    with pytest.raises(Crash):
        drain(sessions, slack_senders(settings), clock)
    monkeypatch.setattr(delivery, "_finish", real_finish)
    assert release_claims(sessions, clock) == 1  # what the daemon does at start-up
    drain(sessions, slack_senders(settings), clock)
    assert len(slack.replies(slack.parents()[0]["ts"])) == 1
    assert slack.calls_to("conversations.replies")
    assert all(r.status == "sent" for r in outbox(sessions))


def test_timeout_after_slack_posted_does_not_duplicate(sessions, slack, clock) -> None:
    settings = slack_settings(slack, slack_timeout_seconds=1)
    senders = slack_senders(settings)
    open_incident(sessions, settings, clock.now())
    slack.script("chat.postMessage", Scripted(act_first=True, delay=2.0))  # lands, but answers too late
    assert deliver_pending(sessions, senders, clock, 50) == 0
    [row] = outbox(sessions)
    assert row.status == "pending" and "unreachable" in row.last_error
    assert row.next_attempt_at == clock.now() + timedelta(seconds=5)  # first backoff step
    clock.advance(timedelta(seconds=5))
    assert deliver_pending(sessions, senders, clock, 50) == 1
    assert len(slack.parents()) == 1 and len(slack.calls_to("chat.postMessage")) == 1


def test_429_waits_for_retry_after_and_other_channels_carry_on(sessions, slack, clock) -> None:
    slack.channels["C0OTHER002"] = "other"
    settings = slack_settings(slack, escalation=[
        {"brands": ["acme"], "levels": [{"channels": ["C0ALERTS01"]}]},
        {"brands": ["globex"], "levels": [{"channels": ["C0OTHER002"]}]},
    ])
    senders = slack_senders(settings)
    documented = json.loads((__import__("tests.conftest").conftest.FIXTURES / "slack" /
                             "error_429_ratelimited_documented.http.json").read_text())
    slack.script("chat.postMessage", Scripted(status=429, body=documented["body"], headers=documented["headers"]))
    open_incident(sessions, settings, clock.now(), brand="acme")
    open_incident(sessions, settings, clock.now(), brand="acme")
    open_incident(sessions, settings, clock.now(), brand="globex")
    assert deliver_pending(sessions, senders, clock, 50) == 1  # globex goes through
    acme, acme_too, globex = outbox(sessions)
    assert globex.status == "sent"
    assert acme.status == "pending" and acme.next_attempt_at == clock.now() + timedelta(seconds=30)
    assert "rate limit" in acme.last_error
    # The other acme incident waits for the same channel's Retry-After without calling Slack.
    assert acme_too.status == "pending" and acme_too.attempts == 0
    assert acme_too.next_attempt_at == clock.now() + timedelta(seconds=30)
    assert len(slack.calls_to("chat.postMessage")) == 2

    clock.advance(timedelta(seconds=29))
    assert deliver_pending(sessions, senders, clock, 50) == 0 and len(slack.calls_to("chat.postMessage")) == 2
    clock.advance(timedelta(seconds=1))
    assert deliver_pending(sessions, senders, clock, 50) == 2
    assert len(slack.parents("C0ALERTS01")) == 2 and len(slack.parents("C0OTHER002")) == 1


def test_server_errors_back_off_and_config_errors_fail_fast(sessions, slack, clock) -> None:
    settings = slack_settings(slack, escalation=[{"levels": [{"channels": ["C0ALERTS01", "C0MISSING9"]}]}])
    senders = slack_senders(settings)
    slack.script("chat.postMessage", Scripted(status=503, body="<html>upstream down</html>"),
                 Scripted(status=500, body={"ok": False, "error": "internal_error"}))
    incident_id = open_incident(sessions, settings, clock.now())
    deliver_pending(sessions, senders, clock, 50)
    first, second = outbox(sessions)
    assert first.status == "pending" and first.attempts == 1
    assert second.status == "pending" and second.attempts == 1
    clock.advance(timedelta(seconds=5))
    drain(sessions, senders, clock)
    clock.advance(timedelta(seconds=10))
    drain(sessions, senders, clock)
    first, second = outbox(sessions)
    assert first.status == "sent" and len(slack.parents("C0ALERTS01")) == 1
    assert second.status == "failed" and "channel_not_found" in second.last_error

    add_event(sessions, settings, incident_id, "grew", clock.advance(timedelta(minutes=1)), data={"observed": 9})
    drain(sessions, senders, clock)
    by_target = {(r.target, r.kind): r.status for r in outbox(sessions)}
    assert by_target[("C0ALERTS01", "reply")] == "sent"
    assert by_target[("C0MISSING9", "reply")] == "failed"  # no parent there: never a stray thread


def test_channel_names_are_resolved_and_posts_are_paced(sessions, slack, clock) -> None:
    settings = slack_settings(slack, default_channel="#alerts", slack_seconds_per_message=0.25)
    senders = slack_senders(settings)
    for _ in range(3):
        open_incident(sessions, settings, clock.now())
    assert deliver_pending(sessions, senders, clock, 50) == 3
    posts = slack.calls_to("chat.postMessage")
    assert [c.args["channel"] for c in posts] == ["C0ALERTS01"] * 3
    assert len(slack.calls_to("conversations.list")) == 1  # resolved once, then cached
    gaps = [b.at - a.at for a, b in zip(posts, posts[1:])]
    assert all(gap >= 0.24 for gap in gaps), gaps


def test_notify_twice_for_the_same_event_queues_once(sessions, slack, clock) -> None:
    from alerts.routing import notify
    from monitor.core.storage.db import transaction
    from monitor.core.storage.schema import IncidentEvent

    settings = slack_settings(slack)
    incident_id = open_incident(sessions, settings, clock.now())
    with transaction(sessions) as session:
        incident = session.get(Incident, incident_id)
        event = session.scalars(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id)).one()
        notify(session, settings, incident, event, clock.now())
    assert len(outbox(sessions)) == 1


def test_detection_detail_is_shown_from_its_most_surprising_firing_test(sessions, slack, clock) -> None:
    settings = slack_settings(slack)
    signal = {"detector": "volume", "window_minutes": 5, "observed": 31.0, "expected": 2.5, "p_value": 2e-9,
              "fired": True}
    detail = {"firing": ["volume:5m", "share:15m"], "peak_excess": 28.5, "peak": signal, "current": [
        {**signal, "window_minutes": 15, "observed": 40.0, "expected": 12.0, "p_value": 1e-3},
        signal,
        {"detector": "share", "window_minutes": 60, "observed": 50, "expected": 45, "p_value": 0.4, "fired": False},
    ]}
    open_incident(sessions, settings, clock.now(), detail=detail)
    drain(sessions, slack_senders(settings), clock)
    body = _all_text(slack.parents()[0])
    assert "31 negative posts in 5 minutes, usually about 2.5" in body
    assert "about 1 in 5.0e8 odds of happening by chance" in body
