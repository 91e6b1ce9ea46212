"""A crafted incident with known times, for the report tests: every milestone is a round number.

Timeline (T = Monday 2026-07-06 10:00 UTC): the rise starts at T; detection opens the incident at
T+4m; its first alert is queued then and delivered at T+4m30s; escalation to level 1 at T+19m;
mona acknowledges at T+25m; alice answers a post at T+40m, bob one at T+50m, carol dismisses one;
one stays unclaimed; mona resolves at T+90m.
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from itertools import count

from sqlalchemy.orm import Session

from monitor.core.storage.schema import (
    Bucket, FlaggedPost, Incident, IncidentEvent, IncidentPost, OutboxMessage, Post, PostEvent,
)

T = datetime(2026, 7, 6, 10, 0, tzinfo=timezone.utc)
_n = count(1)


def minutes(m: float) -> datetime:
    return T + timedelta(minutes=m)


def add_post(session: Session, brand: str, text: str, author: str, at: datetime, url: str | None = None) -> Post:
    n = next(_n)
    post = Post(source=f"{brand}-hook", external_id=f"r{n}", brand=brand, url=url or f"https://social.example/p/{n}",
                author=author, author_followers=100, text=text, lang="en", created_at=at, fetched_at=at,
                content_hash=hashlib.sha256(f"{text}{n}".encode()).hexdigest())
    session.add(post)
    session.flush()
    return post


def add_flag(session: Session, incident: Incident, post: Post, state: str = "open", who: str | None = None,
             at: datetime | None = None, urgency: float = 1.0) -> None:
    session.add(IncidentPost(incident_id=incident.id, post_id=post.id, added_at=incident.opened_at))
    session.add(FlaggedPost(post_id=post.id, brand=post.brand, incident_id=incident.id, reason="incident",
                            urgency=urgency, state=state, flagged_at=incident.opened_at,
                            claimed_by=who, claimed_at=at if who else None,
                            answered_at=at if state in ("answered", "dismissed") else None,
                            answer_url=f"https://social.example/reply/{post.id}" if state == "answered" else None,
                            version=1))
    session.add(PostEvent(post_id=post.id, at=incident.opened_at, kind="flagged", actor=None, data={}))
    if state in ("answered", "dismissed"):
        session.add(PostEvent(post_id=post.id, at=at, kind=state, actor=who, data={}))
        session.add(IncidentEvent(incident_id=incident.id, at=at, kind=f"post_{state}", actor=who,
                                  data={"post_id": post.id}))


def add_buckets(session: Session, brand: str, start: datetime, end: datetime, spike: tuple[datetime, datetime]) -> None:
    t = start
    while t < end:
        rising = spike[0] <= t < spike[1]
        session.add(Bucket(brand=brand, source=f"{brand}-hook", start=t, volume=12 if rising else 3,
                           negative=9 if rising else 1, positive=1, sentiment_sum=0.0, reach_negative=0.0))
        t += timedelta(minutes=1)


def crafted_incident(session: Session, brand: str = "acme", texts: list[str] | None = None,
                     shift: timedelta = timedelta(0), answered: bool = True) -> int:
    """The incident described in the module docstring (moved by `shift`); returns its id."""
    def at(m: float) -> datetime:
        return minutes(m) + shift

    incident = Incident(brand=brand, status="resolved", severity=2, title=f"{brand}: negative posts are surging",
                        started_at=at(0), opened_at=at(4), updated_at=at(90), closed_at=at(90),
                        acknowledged_at=at(25), acknowledged_by="mona", escalation_level=1)
    session.add(incident)
    session.flush()
    opened = IncidentEvent(incident_id=incident.id, at=at(4), kind="opened", actor="detector", data={
        "severity": 1, "signals": [{"detector": "volume", "window_minutes": 5, "observed": 36.0, "expected": 5.1,
                                    "p_value": 1e-9, "threshold": 1e-5, "fired": True}]})
    session.add(opened)
    session.flush()
    session.add(OutboxMessage(idempotency_key=f"incident:{incident.id}:parent", incident_id=incident.id,
                              event_id=opened.id, channel="slack", target="C0ALERTS01", kind="parent", payload={},
                              status="sent", attempts=1, created_at=at(4), next_attempt_at=at(4),
                              sent_at=at(4.5)))
    # A later message delivered earlier than nothing: the first alert is the earliest sent one.
    session.add(OutboxMessage(idempotency_key=f"incident:{incident.id}:later", incident_id=incident.id,
                              event_id=opened.id, channel="console", target="", kind="reply", payload={},
                              status="sent", attempts=1, created_at=at(19), next_attempt_at=at(19), sent_at=at(19.2)))
    session.add_all([
        IncidentEvent(incident_id=incident.id, at=at(10), kind="severity_changed", actor="detector",
                      data={"from": 1, "to": 2, "excess": 31.0}),
        IncidentEvent(incident_id=incident.id, at=at(19), kind="escalated", actor="escalation",
                      data={"level": 1, "after_minutes": 15, "targets": ["slack:#oncall"], "mention": []}),
        IncidentEvent(incident_id=incident.id, at=at(25), kind="acknowledged", actor="mona", data={"via": "web"}),
        IncidentEvent(incident_id=incident.id, at=at(90), kind="resolved", actor="mona", data={}),
    ])
    texts = texts or ["acme lost my parcel", "=HYPERLINK(\"http://evil.example\",\"click\")", "acme support is down",
                      "@here acme refund scam"]
    states = [("answered", "alice", 40), ("answered", "bob", 50), ("dismissed", "carol", 45), ("open", None, None)]
    if not answered:
        states = [("open", None, None)] * 4
    for i, text in enumerate(texts):
        state, who, m = states[i % len(states)]
        post = add_post(session, brand, text, f"author{i}", at(1 + i % 20))
        add_flag(session, incident, post, state, who, at(m) if m is not None else None, urgency=float(len(texts) - i))
    add_buckets(session, brand, at(-40), at(100), (at(0), at(30)))
    session.flush()
    return incident.id


def add_baseline(session: Session, brand: str, volume_per_minute: int = 3, negative_per_minute: int = 1,
                 hours: int = 24 * 7) -> None:
    """A learnt baseline for the brand, as detection would store it after `hours` of steady traffic."""
    from monitor.detection.baseline_store import new_baseline
    from monitor.detection.settings import DetectionSettings
    from monitor.core.storage.schema import DetectionBaseline

    baseline = new_baseline(DetectionSettings())
    start = T - timedelta(hours=hours)
    for h in range(hours):
        baseline.learn_hour(start + timedelta(hours=h), {"volume": [volume_per_minute] * 60,
                                                         "negative": [negative_per_minute] * 60}, 1)
    session.add(DetectionBaseline(brand=brand, folded_until=T, state=baseline.state(), updated_at=T, revision="seed"))
    session.flush()
