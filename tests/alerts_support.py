"""Shared helpers for the alerts tests: incidents with posts, a local Slack server, a simulated clock."""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from alerts.delivery import deliver_pending
from alerts.senders import Senders
from alerts.routing import notify
from alerts.settings import AlertSettings
from alerts.slack import SlackSender
from monitor.core.clock import SimulatedClock
from monitor.core.storage.db import transaction
from monitor.core.storage.schema import Bucket, Incident, IncidentEvent, IncidentPost, OutboxMessage, Post
from tests.slack_server import SlackServer

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
TOKEN = "xoxb-test-token"
HOSTILE = ("RT @acme <!channel> our refund is a SCAM & I want <@U0123ABCD> fired <https://evil.example|click me> "
           "<!here> <!everyone> <!subteam^S0ONCALL> @here @channel")

POSTS_FOR_CLAIM = [("meh", "quiet", 10), ("refund scam, never again", "loud <customer>", 50_000)]


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(T0)


@pytest.fixture
def slack(clock: SimulatedClock) -> Iterator[SlackServer]:
    with SlackServer(now=lambda: clock.now().timestamp()) as server:
        yield server


def slack_settings(server: SlackServer, **overrides: Any) -> AlertSettings:
    values: dict[str, Any] = {
        "slack_bot_token": TOKEN, "slack_base_url": server.base_url, "default_channel": "C0ALERTS01",
        "slack_seconds_per_message": 0, "slack_timeout_seconds": 2,
    }
    values.update(overrides)
    return AlertSettings.model_validate(values)


def slack_senders(settings: AlertSettings) -> Senders:
    return Senders({"slack": SlackSender(settings)}, settings)


def add_post(session: Session, brand: str, text: str, author: str, followers: int | None, now: datetime,
             url: str | None = "https://social.example/p/1", source: str = "bluesky-acme") -> Post:
    post = Post(source=source, external_id=hashlib.sha1(f"{author}{text}{now}".encode()).hexdigest(), brand=brand,
                url=url, author=author, author_followers=followers, text=text, lang="en", created_at=now,
                fetched_at=now, content_hash=hashlib.sha256(text.encode()).hexdigest())
    session.add(post)
    session.flush()
    return post


def open_incident(
    sessions: sessionmaker[Session], settings: AlertSettings, now: datetime, brand: str = "acme", severity: int = 2,
    posts: list[tuple[str, str, int | None]] | None = None, detail: dict[str, Any] | None = None,
) -> int:
    """What detection does: an incident, its posts and its `opened` event, alerts queued in the same transaction."""
    with transaction(sessions) as session:
        incident = Incident(brand=brand, status="open", severity=severity, title="negative spike",
                            started_at=now - timedelta(minutes=10), opened_at=now, updated_at=now,
                            detail=detail or {"metric": "negative posts", "observed": 42, "expected": 3,
                                              "window_minutes": 15, "probability": 1e-5})
        session.add(incident)
        session.flush()
        have_buckets = session.scalar(select(Bucket.id).where(Bucket.brand == brand).limit(1)) is not None
        for minute in range(0 if have_buckets else 10):
            session.add(Bucket(brand=brand, source="bluesky-acme", start=now - timedelta(minutes=9 - minute),
                               volume=10 + minute, negative=minute * minute, positive=1, sentiment_sum=0.0,
                               reach_negative=0.0))
        for text, author, followers in posts or []:
            post = add_post(session, brand, text, author, followers, now)
            session.add(IncidentPost(incident_id=incident.id, post_id=post.id, added_at=now))
        event = IncidentEvent(incident_id=incident.id, at=now, kind="opened", actor=None, data={"severity": severity})
        session.add(event)
        notify(session, settings, incident, event, now)
        return incident.id


def add_event(sessions: sessionmaker[Session], settings: AlertSettings, incident_id: int, kind: str, now: datetime,
              data: dict[str, Any] | None = None, **changes: Any) -> None:
    with transaction(sessions) as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None
        for key, value in changes.items():
            setattr(incident, key, value)
        incident.updated_at = now
        event = IncidentEvent(incident_id=incident_id, at=now, kind=kind, actor=None, data=data or {})
        session.add(event)
        notify(session, settings, incident, event, now)


def outbox(sessions: sessionmaker[Session]) -> list[OutboxMessage]:
    with sessions() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def drain(sessions: sessionmaker[Session], senders: Any, clock: SimulatedClock, rounds: int = 10) -> int:
    total = 0
    for _ in range(rounds):
        sent = deliver_pending(sessions, senders, clock, 50)
        total += sent
        if sent == 0:
            break
    return total
