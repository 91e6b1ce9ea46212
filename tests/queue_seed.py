"""Rows the queue and web tests start from: posts, scores, incidents, flags and staff."""
from __future__ import annotations

import functools
from datetime import datetime, timedelta, timezone
from itertools import count
from typing import Any

from sqlalchemy.orm import Session

from monitor.core import accounts, queue
from monitor.config import Config, parse_config
from monitor.core.ingest import content_hash
from monitor.core.storage.schema import Incident, Post, Score

T0 = datetime(2026, 7, 4, 12, 0, tzinfo=timezone.utc)
_ids = count(1)


def web_config(**web: Any) -> Config:
    """Two brands with webhook sources; one source has its own ingest token."""
    return parse_config({
        "web": {"ingest_token": "shared-ingest-token", "claim_minutes": 30, "session_secret": "s" * 32,
                "poll_seconds": 1, **web},
        "brands": [
            {"name": "acme", "terms": ["acme"], "sources": [
                {"name": "acme-hook", "kind": "webhook"},
                {"name": "acme-private", "kind": "webhook", "params": {"token": "private-token"}},
            ]},
            {"name": "globex", "terms": ["globex"], "sources": [{"name": "globex-hook", "kind": "webhook"}]},
        ],
    }, env={})


def add_post(session: Session, *, brand: str = "acme", source: str = "acme-hook", text: str = "acme broke my order",
             author: str = "someone", lang: str = "en", followers: int = 100, url: str | None = None,
             sentiment: float | None = -0.8, at: datetime = T0) -> Post:
    n = next(_ids)
    post = Post(source=source, external_id=f"ext-{n}", brand=brand, url=url or f"https://example.com/p/{n}",
                author=author, author_followers=followers, text=text, lang=lang, created_at=at, fetched_at=at,
                likes=1, reposts=2, replies=3, content_hash=content_hash(f"{text} {n}"))
    session.add(post)
    session.flush()
    if sentiment is not None:
        session.add(Score(post_id=post.id, model="test-model", label="negative" if sentiment < 0 else "positive",
                          confidence=0.9, sentiment=sentiment, lang=lang, scored_at=at))
    return post


def add_incident(session: Session, brand: str = "acme", severity: int = 3, title: str = "Checkout outage") -> Incident:
    incident = Incident(brand=brand, status="open", severity=severity, title=title, started_at=T0, opened_at=T0,
                        updated_at=T0, escalation_level=0)
    session.add(incident)
    session.flush()
    return incident


def add_flagged(session: Session, urgency: float = 1.0, incident: Incident | None = None, **post_fields: Any) -> Post:
    post = add_post(session, **post_fields)
    queue.flag_post(session, post_id=post.id, brand=post.brand, reason="negative in incident" if incident else
                    "negative, high reach", urgency=urgency, incident_id=incident.id if incident else None, now=T0)
    return post


@functools.cache
def _password_hash(password: str) -> str:
    return accounts.hash_password(password)  # argon2 is slow on purpose: hash each test password once


def add_staff(session: Session) -> dict[str, str]:
    """One user per role (password = name + "-password"); returns each one's API token."""
    tokens = {}
    for name, role in (("alice", "agent"), ("bob", "agent"), ("mona", "manager"), ("ada", "admin")):
        user = accounts.create_user(session, name, role, None, T0 - timedelta(days=1))
        user.password_hash = _password_hash(f"{name}-password")
        tokens[name] = accounts.issue_token(session, user, "tests", T0)
    return tokens
