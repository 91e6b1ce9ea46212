"""What the API returns (typed, so the OpenAPI document describes it) and the helpers pages share."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from alerts.health import IncidentAlerts
from monitor.core.accounts import TokenInfo
from monitor.core.escape import http_url
from monitor.core.queue import QueueItem, effective_state
from monitor.core.sources import SourceWithStatus
from monitor.core.storage.schema import FlaggedPost, Incident, IncidentEvent, Post, PostEvent, User

T = TypeVar("T")


class PostOut(BaseModel):
    id: int
    source: str
    external_id: str
    brand: str
    url: str | None  # only http(s) links; anything else is left out
    author: str
    author_followers: int | None
    text: str
    lang: str | None
    created_at: datetime
    fetched_at: datetime
    likes: int
    reposts: int
    replies: int
    duplicate_of: int | None

    @classmethod
    def of(cls, post: Post) -> PostOut:
        return cls(
            id=post.id, source=post.source, external_id=post.external_id, brand=post.brand, url=http_url(post.url),
            author=post.author, author_followers=post.author_followers, text=post.text, lang=post.lang,
            created_at=post.created_at, fetched_at=post.fetched_at, likes=post.likes, reposts=post.reposts,
            replies=post.replies, duplicate_of=post.duplicate_of,
        )


class FlagOut(BaseModel):
    state: str  # open | claimed | answered | dismissed (a lapsed claim already reads "open")
    reason: str
    urgency: float
    incident_id: int | None
    flagged_at: datetime
    claimed_by: str | None  # the holder, or who answered/dismissed it
    claim_expires_at: datetime | None
    closed_at: datetime | None
    answer_url: str | None
    note: str | None

    @classmethod
    def of(cls, flag: FlaggedPost, now: datetime) -> FlagOut:
        state = effective_state(flag, now)
        return cls(
            state=state, reason=flag.reason, urgency=flag.urgency, incident_id=flag.incident_id,
            flagged_at=flag.flagged_at, claimed_by=flag.claimed_by if state != "open" else None,
            claim_expires_at=flag.claim_expires_at if state == "claimed" else None, closed_at=flag.answered_at,
            answer_url=flag.answer_url, note=flag.note,
        )


class QueueItemOut(BaseModel):
    post: PostOut
    flag: FlagOut
    severity: int | None  # of the incident the post belongs to
    sentiment: float | None
    label: str | None

    @classmethod
    def of(cls, item: QueueItem, now: datetime) -> QueueItemOut:
        return cls(post=PostOut.of(item.post), flag=FlagOut.of(item.flag, now), severity=item.severity,
                   sentiment=item.sentiment, label=item.label)


class EventOut(BaseModel):
    id: int
    at: datetime
    kind: str
    actor: str | None
    data: dict[str, Any] | None

    @classmethod
    def of(cls, event: PostEvent | IncidentEvent) -> EventOut:
        return cls(id=event.id, at=event.at, kind=event.kind, actor=event.actor, data=event.data)


class PostDetail(BaseModel):
    post: PostOut
    queue: QueueItemOut | None  # None when the post was never flagged
    history: list[EventOut]
    sentiment: float | None = None  # the newest score's, whether or not the post is in the queue
    label: str | None = None  # None: not scored yet, or in a language the model does not score
    incident_id: int | None = None  # the incident it is flagged for or linked to


class AlertProblemOut(BaseModel):
    channel: str
    target: str
    status: str  # failed | pending
    error: str | None
    since: datetime


class IncidentOut(BaseModel):
    id: int
    brand: str
    status: str
    severity: int
    title: str
    started_at: datetime
    opened_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    escalation_level: int
    snoozed_until: datetime | None
    owner: str | None  # the user assigned to run it
    silenced_until: datetime | None = None  # the brand's silence (one incident's answer only, not in lists)
    alert_state: str = "none"  # failed | retrying | pending | delivered | none
    alert_problems: list[AlertProblemOut] = []  # one incident's answer only (not in lists)

    @classmethod
    def of(cls, incident: Incident, alert_state: str = "none", alerts: IncidentAlerts | None = None,
           silenced_until: datetime | None = None) -> IncidentOut:
        return cls(
            snoozed_until=incident.snoozed_until, owner=incident.owner, silenced_until=silenced_until,
            alert_state=alerts.state if alerts else alert_state,
            alert_problems=[AlertProblemOut(**vars(p)) for p in alerts.problems] if alerts else [],
            id=incident.id, brand=incident.brand, status=incident.status, severity=incident.severity,
            title=incident.title, started_at=incident.started_at, opened_at=incident.opened_at,
            updated_at=incident.updated_at, closed_at=incident.closed_at, acknowledged_at=incident.acknowledged_at,
            acknowledged_by=incident.acknowledged_by, escalation_level=incident.escalation_level,
        )


class SourceOut(BaseModel):
    name: str
    brand: str
    kind: str
    mode: str  # poll | push | stream
    status: str  # ok | failing | needs_credentials | stale | never | disabled | unconfigured
    last_post_at: datetime | None  # when a new post last came in (a push source's "last received")
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    last_error_at: datetime | None
    last_error: str | None
    consecutive_failures: int
    posts_fetched: int
    items_rejected: int

    @classmethod
    def of(cls, source: SourceWithStatus) -> SourceOut:
        row = source.row  # None: configured, never run
        return cls(
            name=source.name, brand=source.brand, kind=source.kind, mode=source.mode, status=source.status,
            last_post_at=row.last_post_at if row else None, last_attempt_at=row.last_attempt_at if row else None,
            last_success_at=row.last_success_at if row else None, last_error_at=row.last_error_at if row else None,
            last_error=row.last_error if row else None, consecutive_failures=row.consecutive_failures if row else 0,
            posts_fetched=row.posts_fetched if row else 0, items_rejected=row.items_rejected if row else 0,
        )


class UserOut(BaseModel):
    name: str
    role: str
    active: bool
    has_password: bool  # false: no page login, API tokens only
    slack_user_id: str | None  # Slack clicks by this id act as this user
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(name=user.name, role=user.role, active=user.active, has_password=user.password_hash is not None,
                   slack_user_id=user.slack_user_id, created_at=user.created_at)


class ApiTokenOut(BaseModel):
    """A token as listed: never the token itself (shown once, at issue) nor its hash."""

    id: int
    label: str
    created_at: datetime
    last_used_at: datetime | None  # to the minute

    @classmethod
    def of(cls, token: TokenInfo) -> ApiTokenOut:
        return cls(id=token.id, label=token.label, created_at=token.created_at, last_used_at=token.last_used_at)


class Me(BaseModel):
    name: str
    role: str


class TokenOut(BaseModel):
    name: str
    token: str  # shown once; only its hash is stored


class ListOf(BaseModel, Generic[T]):
    items: list[T]
    total: int


class PageOf(ListOf[T], Generic[T]):
    limit: int
    offset: int
    next_offset: int | None  # null on the last page

    @classmethod
    def build(cls, items: list[T], total: int, limit: int, offset: int) -> PageOf[T]:
        following = offset + limit
        return cls(items=items, total=total, limit=limit, offset=offset,
                   next_offset=following if following < total else None)


class IngestOut(BaseModel):
    stored: int
    duplicates: int
    already_seen: int
    off_topic: int
    rejected: list[str]  # one message per rejected item: "item 3: text: ..."
