"""What the API returns (typed, so the OpenAPI document describes it) and the helpers pages share."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from alerts.health import IncidentAlerts
from monitor.core.accounts import TokenInfo
from monitor.core.escape import http_url
from monitor.config import Config, SourceConfig
from monitor.core.queue import QueueItem, effective_state
from monitor.core.storage.schema import FlaggedPost, Incident, IncidentEvent, Post, PostEvent, Source, User

SOURCE_STATES = ("ok", "failing", "needs_credentials", "stale", "never", "unconfigured")
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
    status: str  # ok | failing | needs_credentials | stale | never | unconfigured
    last_post_at: datetime | None  # when a new post last came in (a push source's "last received")
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    last_error_at: datetime | None
    last_error: str | None
    consecutive_failures: int
    posts_fetched: int
    items_rejected: int

    @classmethod
    def of(cls, source: Source, status: str, mode: str = "poll") -> SourceOut:
        return cls(
            name=source.name, brand=source.brand, kind=source.kind, mode=mode, status=status,
            last_post_at=source.last_post_at,
            last_attempt_at=source.last_attempt_at, last_success_at=source.last_success_at,
            last_error_at=source.last_error_at, last_error=source.last_error,
            consecutive_failures=source.consecutive_failures, posts_fetched=source.posts_fetched,
            items_rejected=source.items_rejected,
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


PUSH_STALE_AFTER = timedelta(hours=1)  # a push source without stale_after_minutes: silent this long is stale


@dataclass(frozen=True)
class SourceExpectation:
    """What a configured source should be doing, to judge its row against."""

    mode: str  # poll | push | stream
    interval_seconds: float
    stale_after: timedelta | None  # no new post for this long: stale

    @classmethod
    def of(cls, source: SourceConfig) -> SourceExpectation:
        minutes = source.stale_after_minutes
        stale_after = timedelta(minutes=minutes) if minutes else (PUSH_STALE_AFTER if source.mode == "push" else None)
        return cls(source.mode, source.interval_seconds, stale_after)


def source_expectations(config: Config) -> dict[str, SourceExpectation]:
    return {source.name: SourceExpectation.of(source) for _, source in config.sources() if source.enabled}


def needs_credentials(source: Source) -> bool:
    """The last run was refused for its credentials (`AuthFailed`, as `monitor.polling` records it)."""
    return source.consecutive_failures > 0 and (source.last_error or "").startswith("AuthFailed:")


def source_status(source: Source, expected: SourceExpectation | None, now: datetime) -> str:
    """ok / failing (last attempt failed) / needs_credentials (refused with 401/403: paused until a
    restart with new ones) / stale (no success, or no new post, for a while) / never / unconfigured.

    A push source is judged by when a post last arrived (it has no polls); any source with
    `stale_after_minutes` is also stale when it brings no new post for that long, polls succeeding or not.
    """
    if expected is None:
        return "unconfigured"
    if expected.mode == "push":
        if source.last_post_at is None:
            return "never"
        assert expected.stale_after is not None
        return "stale" if now - source.last_post_at > expected.stale_after else "ok"
    if source.consecutive_failures > 0:
        return "needs_credentials" if needs_credentials(source) else "failing"
    if source.last_success_at is None:
        return "never"
    allowed = timedelta(seconds=max(3 * expected.interval_seconds, 300))
    if now - source.last_success_at > allowed:
        return "stale"
    if expected.stale_after is not None and now - (source.last_post_at or source.last_success_at) > expected.stale_after:
        return "stale"
    return "ok"
