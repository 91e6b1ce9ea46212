"""The claim queue: flagged posts that customer-service staff claim, answer or dismiss.

Every state change is one conditional UPDATE whose WHERE clause states the legal starting states,
and the affected row count decides the outcome. Under concurrency the database serialises the
updates on the row (SQLite's write lock, PostgreSQL's row lock plus re-check of the WHERE clause),
so two people can never both win a claim. Nothing is read before the write in the same
transaction, which keeps SQLite's WAL mode from failing a late writer on a stale snapshot.

Each action writes a `post_events` row (who, when) and, when the post belongs to an incident, an
`incident_events` row, so the incident timeline shows what staff did about it. Flagging itself is
a machine action and goes to `post_events` only, so a large incident's timeline is not flooded.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from monitor.core.enums import FlagState
from monitor.core.storage.db import update_if
from monitor.core.storage.schema import FlaggedPost, Incident, IncidentPost, Post, PostEvent, Score
from monitor.core.timeline import Notify, record_post_event

ACTIVE_STATES = (FlagState.OPEN, FlagState.CLAIMED)


class QueueError(Exception):
    """An action that is not allowed on the post as it is now; `code` is stable for API clients."""

    code = "queue_error"


class NotFlagged(QueueError):
    code = "not_flagged"


class ClaimConflict(QueueError):
    """Someone else holds the post (or it was already answered or dismissed)."""

    code = "conflict"


@dataclass(frozen=True)
class QueueFilters:
    brand: str | None = None
    source: str | None = None
    language: str | None = None
    min_severity: int | None = None  # of the incident the post belongs to; posts without one count as 0
    mine: str | None = None  # a user name: only posts that user holds
    states: Sequence[str] = ACTIVE_STATES


@dataclass(frozen=True)
class PageRequest:
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True)
class QueueItem:
    flag: FlaggedPost
    post: Post
    severity: int | None
    sentiment: float | None
    label: str | None

    def state_at(self, now: datetime) -> str:
        """The state as people should see it: a lapsed claim is open again even before the lapse job runs."""
        return effective_state(self.flag, now)


def effective_state(flag: FlaggedPost, now: datetime) -> str:
    if flag.state == FlagState.CLAIMED and flag.claim_expires_at is not None and flag.claim_expires_at < now:
        return FlagState.OPEN
    return flag.state


def _conditional(session: Session, post_id: int, condition: Any, values: dict[str, Any]) -> bool:
    return update_if(session, FlaggedPost, FlaggedPost.post_id == post_id, condition,
                     version=FlaggedPost.version + 1, **values)


def flag_post(
    session: Session, *, post_id: int, brand: str, reason: str, urgency: float,
    incident_id: int | None, now: datetime,
) -> FlaggedPost:
    """Put a post in the queue, or raise its urgency / attach its incident if it is already there.

    Idempotent: detection may flag the same post on every run. A post already answered or
    dismissed stays closed. Updates are conditional SQL, so they never undo a concurrent claim.
    """
    flag = session.get(FlaggedPost, post_id)
    if flag is None:
        flag = FlaggedPost(
            post_id=post_id, brand=brand, incident_id=incident_id, reason=reason[:200], urgency=urgency,
            state=FlagState.OPEN, flagged_at=now, version=0,
        )
        session.add(flag)
        session.flush()
        record_post_event(session, post_id, "flagged", None, now, {"reason": reason, "urgency": urgency})
        return flag
    raised = _conditional(session, post_id, FlaggedPost.urgency < urgency, {"urgency": urgency})
    attached = incident_id is not None and _conditional(
        session, post_id, FlaggedPost.incident_id.is_(None), {"incident_id": incident_id})
    if raised or attached:
        session.refresh(flag)
    return flag


def explain(session: Session, post_id: int, user: str, now: datetime) -> QueueError:
    """Why a conditional update matched nothing: read the row once and name the reason."""
    flag = session.get(FlaggedPost, post_id, populate_existing=True)
    if flag is None:
        return NotFlagged(f"post {post_id} is not in the queue")
    state = effective_state(flag, now)
    if state == FlagState.CLAIMED and flag.claimed_by != user:
        return ClaimConflict(f"post {post_id} is claimed by {flag.claimed_by} until {flag.claim_expires_at:%H:%M} UTC")
    if state in (FlagState.ANSWERED, FlagState.DISMISSED):
        return ClaimConflict(f"post {post_id} was already {state}")
    if state == FlagState.OPEN:
        return ClaimConflict(f"post {post_id} is not claimed by {user}")
    return ClaimConflict(f"post {post_id} cannot change from {state}")


def _claimable(user: str, now: datetime) -> Any:
    """Open, or claimed by `user` (a renewal), or claimed by anyone whose claim has lapsed."""
    return or_(
        FlaggedPost.state == FlagState.OPEN,
        and_(FlaggedPost.state == FlagState.CLAIMED,
             or_(FlaggedPost.claimed_by == user, FlaggedPost.claim_expires_at < now)),
    )


def _incident_of(session: Session, post_id: int) -> int | None:
    return session.scalar(select(FlaggedPost.incident_id).where(FlaggedPost.post_id == post_id))


def claim(session: Session, post_id: int, user: str, now: datetime, minutes: float, *,
          incident_data: dict[str, Any] | None = None, notify: Notify | None = None) -> bool:
    """Make the post `user`'s for `minutes`. False when someone else holds it or it is closed.

    Claiming a post you already hold renews the claim (that is what "touching" it means). The
    incident's `post_claimed` event gets `incident_data` too, and is told to `notify`.
    """
    expires = now + timedelta(minutes=minutes)
    won = _conditional(
        session, post_id, _claimable(user, now),
        {"state": FlagState.CLAIMED, "claimed_by": user, "claimed_at": now, "claim_expires_at": expires},
    )
    if won:
        record_post_event(session, post_id, "claimed", user, now, {"expires_at": expires.isoformat()},
                          incident_id=_incident_of(session, post_id), incident_data=incident_data, notify=notify)
    elif session.get(FlaggedPost, post_id) is None:
        raise NotFlagged(f"post {post_id} is not in the queue")
    return won


def release(session: Session, post_id: int, user: str, now: datetime, *, force: bool = False) -> None:
    """Give a claimed post back to the queue. Only its holder may, unless `force` (managers)."""
    holder = session.scalar(select(FlaggedPost.claimed_by).where(FlaggedPost.post_id == post_id)) if force else user
    # Conditional on the holder read above, so a forced release never frees a claim made since.
    condition = and_(FlaggedPost.state == FlagState.CLAIMED, FlaggedPost.claimed_by == holder)
    if holder is None or not _conditional(
            session, post_id, condition,
            {"state": FlagState.OPEN, "claimed_by": None, "claimed_at": None, "claim_expires_at": None}):
        raise explain(session, post_id, user, now)
    data = {"holder": holder} if holder != user else None
    record_post_event(session, post_id, "released", user, now, data, incident_id=_incident_of(session, post_id))


def answer(session: Session, post_id: int, user: str, url: str, note: str | None, now: datetime) -> None:
    """Mark the post answered, with the reply's URL. Allowed unless someone else holds it."""
    if not _conditional(session, post_id, _claimable(user, now),
                        {"state": FlagState.ANSWERED, "claimed_by": user, "answered_at": now, "answer_url": url,
                         "note": note, "claim_expires_at": None}):
        raise explain(session, post_id, user, now)
    record_post_event(session, post_id, "answered", user, now, {"url": url, "note": note},
                      incident_id=_incident_of(session, post_id))


def dismiss(session: Session, post_id: int, user: str, reason: str, now: datetime) -> None:
    """Take the post out of the queue without answering (spam, already handled, not about us)."""
    if not _conditional(session, post_id, _claimable(user, now),
                        {"state": FlagState.DISMISSED, "claimed_by": user, "answered_at": now, "note": reason,
                         "claim_expires_at": None}):
        raise explain(session, post_id, user, now)
    record_post_event(session, post_id, "dismissed", user, now, {"reason": reason},
                      incident_id=_incident_of(session, post_id))


def lapse_expired(session: Session, now: datetime) -> int:
    """Return every claim untouched past its expiry to the queue; returns how many lapsed."""
    expired = session.execute(
        select(FlaggedPost.post_id, FlaggedPost.claimed_by, FlaggedPost.incident_id)
        .where(FlaggedPost.state == FlagState.CLAIMED, FlaggedPost.claim_expires_at < now)
    ).all()
    lapsed = 0
    for post_id, holder, incident_id in expired:
        # Re-checked per row: the holder may have renewed or answered since the select.
        if _conditional(session, post_id,
                        and_(FlaggedPost.state == FlagState.CLAIMED, FlaggedPost.claimed_by == holder,
                             FlaggedPost.claim_expires_at < now),
                        {"state": FlagState.OPEN, "claimed_by": None, "claimed_at": None, "claim_expires_at": None}):
            record_post_event(session, post_id, "lapsed", None, now, {"holder": holder}, incident_id=incident_id)
            lapsed += 1
    return lapsed


def latest_verdicts(session: Session, ids: Sequence[int]) -> dict[int, tuple[float | None, str | None]]:
    """Each post's newest labelled score (any model): (sentiment, label), for just these posts."""
    latest: dict[int, tuple[float | None, str | None]] = {}
    if ids:
        for post_id, sentiment, label in session.execute(
            select(Score.post_id, Score.sentiment, Score.label)
            .where(Score.post_id.in_(list(ids)), Score.label.is_not(None))
            .order_by(Score.post_id, Score.scored_at.desc(), Score.id.desc())
        ):
            latest.setdefault(post_id, (sentiment, label))
    return latest


def incident_of_post(session: Session, post_id: int) -> int | None:
    """The incident a post belongs to: its queue entry's, else the newest incident it is linked to."""
    flagged = _incident_of(session, post_id)
    if flagged is not None:
        return flagged
    return session.scalar(select(IncidentPost.incident_id).where(IncidentPost.post_id == post_id)
                          .order_by(IncidentPost.incident_id.desc()).limit(1))


def _with_scores(session: Session, rows: Sequence[Any]) -> list[QueueItem]:
    latest = latest_verdicts(session, [flag.post_id for flag, _, _ in rows])
    return [QueueItem(flag, post, severity, *latest.get(flag.post_id, (None, None))) for flag, post, severity in rows]


def _items_query() -> Any:
    return (
        select(FlaggedPost, Post, Incident.severity)
        .join(Post, Post.id == FlaggedPost.post_id)
        .outerjoin(Incident, Incident.id == FlaggedPost.incident_id)
    )


def list_queue(
    session: Session, filters: QueueFilters, page: PageRequest, now: datetime | None = None
) -> tuple[list[QueueItem], int]:
    """One page of the queue, most urgent first, and the total matching count.

    With `now`, `mine` leaves out claims that have lapsed but not yet been returned by the lapse job.
    The page's ids are chosen on the narrow queue table first (joining posts and incidents only when
    a filter needs them), and only those rows are then joined: sorting wide rows is what costs.
    """
    conditions: list[Any] = [FlaggedPost.state.in_(list(filters.states))]
    if filters.brand:
        conditions.append(FlaggedPost.brand == filters.brand)
    if filters.source:
        conditions.append(Post.source == filters.source)
    if filters.language:
        conditions.append(Post.lang == filters.language)
    if filters.min_severity is not None:
        conditions.append(func.coalesce(Incident.severity, 0) >= filters.min_severity)
    if filters.mine:
        conditions += [FlaggedPost.state == FlagState.CLAIMED, FlaggedPost.claimed_by == filters.mine]
        if now is not None:
            conditions.append(FlaggedPost.claim_expires_at >= now)

    def matching(*columns: Any) -> Any:
        query = select(*columns).select_from(FlaggedPost)
        if filters.source or filters.language:
            query = query.join(Post, Post.id == FlaggedPost.post_id)
        if filters.min_severity is not None:
            query = query.outerjoin(Incident, Incident.id == FlaggedPost.incident_id)
        return query.where(*conditions)

    order = (FlaggedPost.urgency.desc(), FlaggedPost.flagged_at, FlaggedPost.post_id)
    total = session.scalar(matching(func.count())) or 0
    page_ids = matching(FlaggedPost.post_id).order_by(*order).limit(page.limit).offset(page.offset)
    rows = session.execute(_items_query().where(FlaggedPost.post_id.in_(page_ids.scalar_subquery())).order_by(*order))
    return _with_scores(session, rows.all()), total


def get_item(session: Session, post_id: int) -> QueueItem | None:
    """One flagged post with its queue entry, whatever its state (None when never flagged)."""
    rows = session.execute(_items_query().where(FlaggedPost.post_id == post_id)).all()
    items = _with_scores(session, rows)
    return items[0] if items else None


def history(session: Session, post_id: int) -> list[PostEvent]:
    """The post's queue history, oldest first."""
    return list(session.scalars(select(PostEvent).where(PostEvent.post_id == post_id).order_by(PostEvent.id)))
