"""A Slack outage loses no alert (issue 17 #1): real slack_sdk against the local Slack server.

Slack first answers 429 (Retry-After: 2) for a long while, then 5xx, while incidents keep opening and
changing. Rate-limited tries must not use up attempts, and a parent that did fail for good must be
re-created by its incident's next message instead of failing every later one.
"""
from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta

from alerts.delivery import deliver_pending
from tests.alerts_support import (  # noqa: F401 - fixtures
    add_event, clock, open_incident, outbox, slack, slack_senders, slack_settings,
)
from tests.slack_server import Scripted

RATE_LIMITED = Scripted(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "2"})
DOWN = Scripted(503, {"ok": False, "error": "service_unavailable"})


def _keys(slack) -> Counter[str]:
    return Counter(m["metadata"]["event_payload"]["key"] for m in slack.posts() if m.get("metadata"))


def test_429s_then_5xx_while_incidents_open_every_alert_lands_once(sessions, slack, clock) -> None:
    settings = slack_settings(slack)
    senders = slack_senders(settings)
    for method in ("chat.postMessage", "chat.update"):
        slack.script(method, *[RATE_LIMITED] * 60, *[DOWN] * 12)
    incidents: list[int] = []
    for second in range(0, 1800):
        if second % 20 == 0 and len(incidents) < 6:
            incidents.append(open_incident(sessions, settings, clock.now(), severity=2 + len(incidents) % 2))
        if second % 30 == 15 and incidents:
            add_event(sessions, settings, incidents[(second // 30) % len(incidents)], "grew", clock.now(),
                      data={"observed": second})
        deliver_pending(sessions, senders, clock, 50)
        if second > 300 and all(row.status == "sent" for row in outbox(sessions)):
            break
        clock.advance(timedelta(seconds=1))

    rows = outbox(sessions)
    assert not slack.scripts["chat.postMessage"]  # the whole outage was played
    assert [r.id for r in rows if r.status != "sent"] == [], [(r.kind, r.status, r.last_error) for r in rows]
    assert len(slack.parents()) == len(incidents) == 6  # one thread per incident
    keys = _keys(slack)
    assert max(keys.values()) == 1  # nothing posted twice
    assert len(keys) == sum(1 for r in rows if r.kind in ("parent", "reply"))


def test_a_parent_that_failed_for_good_is_re_created_by_the_next_message(sessions, slack, clock) -> None:
    settings = slack_settings(slack, max_attempts=2)
    senders = slack_senders(settings)
    incident_id = open_incident(sessions, settings, clock.now())
    slack.script("chat.postMessage", DOWN, DOWN)
    for _ in range(3):
        deliver_pending(sessions, senders, clock, 50)
        clock.advance(timedelta(minutes=1))
    [parent] = outbox(sessions)
    assert parent.status == "failed" and slack.parents() == []

    add_event(sessions, settings, incident_id, "grew", clock.now(), data={"observed": 80}, severity=3)
    for _ in range(3):
        deliver_pending(sessions, senders, clock, 50)
    rows = outbox(sessions)
    assert [(r.kind, r.status) for r in rows] == [("parent", "sent"), ("update", "sent"), ("reply", "sent")]
    [message] = slack.parents()
    assert "SEV-3" in str(message["blocks"])  # the re-created parent shows the current state
    assert [r["text"].split(" (")[0] for r in slack.replies(message["ts"])] == ["Update: grew"]
    assert rows[0].external_ref == f"C0ALERTS01:{message['ts']}" and "re-created" in (rows[0].last_error or "")


def test_re_creating_adopts_a_failed_parent_that_did_land(sessions, slack, clock) -> None:
    """The parent's last try reached Slack but its answer was a 5xx: re-creating must not post it twice."""
    settings = slack_settings(slack, max_attempts=1)
    senders = slack_senders(settings)
    incident_id = open_incident(sessions, settings, clock.now())
    slack.script("chat.postMessage", Scripted(503, {"ok": False, "error": "service_unavailable"}, act_first=True))
    deliver_pending(sessions, senders, clock, 50)
    assert outbox(sessions)[0].status == "failed" and len(slack.parents()) == 1

    add_event(sessions, settings, incident_id, "grew", clock.advance(timedelta(minutes=1)), data={"observed": 80})
    for _ in range(3):
        deliver_pending(sessions, senders, clock, 50)
    assert [r.status for r in outbox(sessions)] == ["sent", "sent", "sent"]
    [message] = slack.parents()
    assert len(slack.replies(message["ts"])) == 1


def test_a_trickled_answer_ends_at_the_send_deadline_and_the_retry_adopts_what_landed(sessions, slack, clock) -> None:
    """Issue 17 #4 for alerts: each read of a one-byte-at-a-time answer beats the per-read timeout, so only a
    deadline on the whole send keeps the deliver job (every alert behind it) from hanging."""
    settings = slack_settings(slack, send_deadline_seconds=0.5)
    senders = slack_senders(settings)
    open_incident(sessions, settings, clock.now())
    slack.script("chat.postMessage", Scripted(act_first=True, trickle=0.05))  # posted, answered over ~30 s

    started = time.monotonic()
    deliver_pending(sessions, senders, clock, 50)
    assert time.monotonic() - started < 5
    [row] = outbox(sessions)
    assert row.status == "pending" and "send_deadline_seconds=0.5" in (row.last_error or "")

    clock.advance(timedelta(minutes=1))
    deliver_pending(sessions, senders, clock, 50)
    [row] = outbox(sessions)
    assert row.status == "sent"
    assert len(slack.parents()) == 1  # the retry found the message the abandoned try had posted
