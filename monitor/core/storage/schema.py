"""The database tables, as SQLAlchemy 2 ORM classes.

Times are stored as naive UTC and always come back timezone-aware (`UTCDateTime`), so SQLite and
PostgreSQL behave the same. Changing a table means adding an Alembic revision in
`monitor/core/storage/migrations/versions/`; `tests/test_storage.py` fails when the two disagree.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, naive UTC in the database, aware UTC out."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: flarewatch stores aware UTC times only")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


# Stable constraint names keep Alembic migrations identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Id = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements only INTEGER keys


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    # Every model here maps one Table (DeclarativeBase types it as any FromClause), which Core's
    # insert()/update() of whole batches need.
    __table__: ClassVar[Table]
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON}


class Source(Base):
    """A configured source's persistent state: its cursor and its health."""

    __tablename__ = "sources"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    brand: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(50))
    cursor: Mapped[str | None] = mapped_column(Text)
    last_attempt_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_error_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    last_post_at: Mapped[datetime | None]  # when a new post last came in (polled or pushed): silence shows here
    posts_fetched: Mapped[int] = mapped_column(BigInteger, default=0)
    items_rejected: Mapped[int] = mapped_column(BigInteger, default=0)


class Post(Base):
    """A post as fetched. Unique per (source, external id): a re-poll never duplicates."""

    __tablename__ = "posts"
    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        Index("ix_posts_brand_created", "brand", "created_at"),
        Index("ix_posts_content_hash", "brand", "content_hash"),
        Index("ix_posts_duplicate_of", "duplicate_of"),  # copies of a post, for counting and the SET NULL cascade
        # Copies by arrival, for the viral read of older posts copied again within its lookback.
        Index("ix_posts_copies_created", "brand", "created_at", postgresql_where=text("duplicate_of IS NOT NULL"),
              sqlite_where=text("duplicate_of IS NOT NULL")),
        # Only the posts still waiting for the scoring stage are in it, so a scoring tick finds its
        # work at the same cost with 10k or 2M stored posts.
        Index("ix_posts_pending", "created_at", "id", postgresql_where=text("pending"), sqlite_where=text("pending = 1")),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(100))
    external_id: Mapped[str] = mapped_column(String(200))
    brand: Mapped[str] = mapped_column(String(200))
    url: Mapped[str | None] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(300))
    author_followers: Mapped[int | None] = mapped_column(BigInteger)
    text: Mapped[str] = mapped_column(Text)
    lang: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime]
    fetched_at: Mapped[datetime]
    likes: Mapped[int] = mapped_column(BigInteger, default=0)
    reposts: Mapped[int] = mapped_column(BigInteger, default=0)
    replies: Mapped[int] = mapped_column(BigInteger, default=0)
    score: Mapped[int | None] = mapped_column(BigInteger)
    # Exact re-posts of a post we already have point at the original instead of counting twice.
    content_hash: Mapped[str] = mapped_column(String(64))
    duplicate_of: Mapped[int | None] = mapped_column(ForeignKey("posts.id", ondelete="SET NULL"))
    raw: Mapped[dict[str, Any] | None]
    # True from ingest until the scoring stage has scored (or, for a copy, counted) it; a copy by
    # the original's own author is never counted, so it is stored False.
    pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    scores: Mapped[list[Score]] = relationship(back_populates="post", cascade="all, delete-orphan")


class Score(Base):
    """One model's verdict on one post; a model change adds rows instead of overwriting."""

    __tablename__ = "scores"
    __table_args__ = (UniqueConstraint("post_id", "model"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    model: Mapped[str] = mapped_column(String(300))
    label: Mapped[str | None] = mapped_column(String(10))  # None: unscored (unsupported language)
    confidence: Mapped[float | None] = mapped_column(Float)
    sentiment: Mapped[float | None] = mapped_column(Float)
    lang: Mapped[str | None] = mapped_column(String(20))
    scored_at: Mapped[datetime]

    post: Mapped[Post] = relationship(back_populates="scores")


class Bucket(Base):
    """Per brand, source and minute: the counts detection reads instead of rescanning posts."""

    __tablename__ = "buckets"
    __table_args__ = (UniqueConstraint("brand", "source", "start"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    brand: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(100))
    start: Mapped[datetime] = mapped_column(index=True)
    volume: Mapped[int] = mapped_column(default=0)
    negative: Mapped[int] = mapped_column(default=0)
    positive: Mapped[int] = mapped_column(default=0)
    sentiment_sum: Mapped[float] = mapped_column(Float, default=0.0)
    reach_negative: Mapped[float] = mapped_column(Float, default=0.0)


class DetectionBaseline(Base):
    """Per brand: the learnt hour-of-week baseline (monitor.detection.baseline), folded hourly."""

    __tablename__ = "detection_baselines"
    brand: Mapped[str] = mapped_column(String(200), primary_key=True)
    folded_until: Mapped[datetime]  # hours before this are in `state`
    state: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]
    revision: Mapped[str] = mapped_column(String(32))  # new random value per write: a process-cache key


class Incident(Base):
    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_brand_status", "brand", "status"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    brand: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | resolved | closed
    severity: Mapped[int] = mapped_column(default=1)
    title: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime]  # estimated start of the rise
    opened_at: Mapped[datetime]  # detection time
    updated_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    snoozed_until: Mapped[datetime | None]
    owner: Mapped[str | None] = mapped_column(String(200))  # the user assigned to run the incident
    escalation_level: Mapped[int] = mapped_column(default=0)
    next_escalation_at: Mapped[datetime | None]
    detail: Mapped[dict[str, Any] | None]

    events: Mapped[list[IncidentEvent]] = relationship(
        back_populates="incident", order_by="IncidentEvent.id", cascade="all, delete-orphan"
    )


class IncidentEvent(Base):
    """The incident timeline: every change, with who did it and the numbers behind it."""

    __tablename__ = "incident_events"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str | None] = mapped_column(String(200))
    data: Mapped[dict[str, Any] | None]

    incident: Mapped[Incident] = relationship(back_populates="events")


class IncidentPost(Base):
    __tablename__ = "incident_posts"
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True)
    added_at: Mapped[datetime]


class OutboxMessage(Base):
    """An alert to deliver, written in the same transaction as the incident change behind it."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "status", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(300), unique=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("incident_events.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(50))  # slack | console | webhook | email
    target: Mapped[str] = mapped_column(String(300), default="")
    kind: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending | sending | sent | failed
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    external_ref: Mapped[str | None] = mapped_column(String(300))  # e.g. the Slack message ts


class SlackThread(Base):
    """One incident = one Slack thread per channel: the parent message to edit and reply under."""

    __tablename__ = "slack_threads"
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(100), primary_key=True)  # as configured: C… id, #name or U… (DM)
    ts: Mapped[str] = mapped_column(String(50))
    channel_id: Mapped[str | None] = mapped_column(String(100))  # the conversation id Slack answered with


class Silence(Base):
    __tablename__ = "silences"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    brand: Mapped[str] = mapped_column(String(200), index=True)
    until: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text, default="")


class FlaggedPost(Base):
    """The claim queue. Claiming is one conditional UPDATE on this row, so two people never hold it."""

    __tablename__ = "flagged_posts"
    __table_args__ = (Index("ix_flagged_state_urgency", "state", "urgency"),)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True)
    brand: Mapped[str] = mapped_column(String(200))
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="SET NULL"), index=True)
    reason: Mapped[str] = mapped_column(String(200))
    urgency: Mapped[float] = mapped_column(Float, default=0.0)
    state: Mapped[str] = mapped_column(String(20), default="open")  # open | claimed | answered | dismissed
    flagged_at: Mapped[datetime]
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_at: Mapped[datetime | None]
    claim_expires_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    answer_url: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(default=0)


class PostEvent(Base):
    """A post's own history in the queue (flagged, claimed, released, answered, dismissed, lapsed)."""

    __tablename__ = "post_events"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str | None] = mapped_column(String(200))
    data: Mapped[dict[str, Any] | None]


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(20))  # agent | manager | admin
    password_hash: Mapped[str | None] = mapped_column(Text)
    slack_user_id: Mapped[str | None] = mapped_column(String(50), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class Lease(Base):
    """Who does a piece of shared work (poll a source, detect a brand) until when (monitor.core.leases).

    Times are the database's clock in epoch seconds, so replicas on machines with skewed clocks
    agree on when a lease has expired.
    """

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)


class Replica(Base):
    """A running `flarewatch run` process and its roles; `seen_at` is its last heartbeat (database clock)."""

    __tablename__ = "replicas"
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int]
    roles: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[float] = mapped_column(Float)
    seen_at: Mapped[float] = mapped_column(Float)


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]


class WebSession(Base):
    """A browser session. The cookie carries only a random id; its SHA-256 keys this row, which holds
    what the session knows. Deleting the row ends the session (logout, password change), whichever
    replica served it."""

    __tablename__ = "web_sessions"
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    data: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


class SlackAction(Base):
    """A Slack click already handled, by a hash of who clicked what and when (its action_ts), so a
    signed request replayed within the signature's 5 minutes is not run twice."""

    __tablename__ = "slack_actions"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(index=True)


class HealthCheck(Base):
    """One row that `/healthz` rewrites: proof that the database takes writes, not only SELECT 1."""

    __tablename__ = "health_checks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    checked_at: Mapped[datetime]
