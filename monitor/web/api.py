"""The REST API under /api: posts, the queue and its actions, incidents, sources, users.

Roles: agent reads posts and works the queue; manager also sees incidents and sources and may
release anyone's claim; admin also manages users and tokens. Lists are paged with limit/offset
and return `next_offset` (null on the last page). What each route needs (its role first, then the
database session, the clock, the row it names) comes from the typed dependencies of `monitor.web.deps`.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import AfterValidator, BaseModel, Field, field_validator
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from alerts.health import incident_alerts, incidents_alerts
from alerts.routing import Alerts
from connectors.registry import connector_mode
from monitor.core import accounts, incidents, queue
from monitor.core.escape import http_url
from monitor.core.settings import Strict
from monitor.core.sources import sources_with_status
from monitor.core.storage.db import transaction
from monitor.core.storage.schema import Incident, Post
from monitor.web.deps import (
    MAX_ID, Admin, Agent, AppConfig, CleanStr, DbSession, FoundIncident, FoundPost, FoundUser, IncidentId, Manager,
    Now, PostId, Sessions, UserName,
)
from monitor.web.errors import ERROR_RESPONSES, ApiError, ErrorOut, action_error
from monitor.web.views import (
    ApiTokenOut, EventOut, IncidentOut, ListOf, Me, PageOf, PostDetail, PostOut, QueueItemOut, SourceOut, TokenOut,
    UserOut,
)

TokenId = Annotated[int, Path(ge=1, le=MAX_ID, description="the token's id, from the token list")]
Filter = Annotated[CleanStr | None, Query(max_length=200)]
Limit = Annotated[int, Query(ge=1, le=200, description="page size")]
Offset = Annotated[int, Query(ge=0, le=10**9, description="rows to skip; use the previous page's next_offset")]


class Body(Strict):
    """Request bodies: an unknown field is a 422, not silently dropped."""


def _http_url(value: str) -> str:
    if http_url(value) is None:
        raise ValueError("must be an http(s) URL")
    return value.strip()


class AnswerBody(Body):
    url: Annotated[CleanStr, Field(min_length=8, max_length=2000), AfterValidator(_http_url)]
    note: Annotated[CleanStr | None, Field(max_length=5000)] = None


class DismissBody(Body):
    reason: Annotated[CleanStr, Field(min_length=1, max_length=2000)]


class NewUserBody(Body):
    name: Annotated[CleanStr, Field(min_length=1, max_length=200)]
    role: Literal["agent", "manager", "admin"]
    password: Annotated[CleanStr | None, Field(min_length=8, max_length=1000)] = None


class UserChangeBody(Body):
    """Only the fields sent change. `password: null` turns page login off; `slack_user_id` null or "" clears it."""

    role: Literal["agent", "manager", "admin"] | None = None
    password: Annotated[CleanStr | None, Field(min_length=8, max_length=1000)] = None
    active: bool | None = None
    slack_user_id: Annotated[CleanStr | None, Field(max_length=50)] = None

    @field_validator("role", "active", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("must not be null; leave the field out to keep it")
        return value


class TokenBody(Body):
    label: Annotated[CleanStr, Field(max_length=200)] = ""


router = APIRouter(prefix="/api", responses=ERROR_RESPONSES)


@router.get("/me", tags=["accounts"], summary="The token's user")
def me(staff: Agent) -> Me:
    return Me(name=staff.name, role=staff.role)


def _page(session: Session, query: Select[Any], order: tuple[Any, ...], limit: int, offset: int) -> tuple[list[Any], int]:
    """One page of a query's rows in the given order, and how many rows there are in all."""
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    return list(session.scalars(query.order_by(*order).limit(limit).offset(offset))), total


@router.get("/posts", tags=["posts"], summary="Stored posts, newest first")
def list_posts(staff: Agent, session: DbSession, brand: Filter = None, source: Filter = None, limit: Limit = 50,
               offset: Offset = 0) -> PageOf[PostOut]:
    query = select(Post)
    if brand:
        query = query.where(Post.brand == brand)
    if source:
        query = query.where(Post.source == source)
    posts, total = _page(session, query, (Post.created_at.desc(), Post.id.desc()), limit, offset)
    return PageOf[PostOut].build([PostOut.of(p) for p in posts], total, limit, offset)


@router.get("/posts/{post_id}", tags=["posts"], summary="One post, its queue entry and its history")
def get_post(staff: Agent, post: FoundPost, session: DbSession, now: Now) -> PostDetail:
    item = queue.get_item(session, post.id)
    sentiment, label = queue.latest_verdicts(session, [post.id]).get(post.id, (None, None))
    return PostDetail(
        post=PostOut.of(post), queue=QueueItemOut.of(item, now) if item else None,
        history=[EventOut.of(e) for e in queue.history(session, post.id)],
        sentiment=sentiment, label=label, incident_id=queue.incident_of_post(session, post.id),
    )


@router.get("/queue", tags=["queue"], summary="Flagged posts waiting for an answer, most urgent first")
def list_queue(
    staff: Agent, session: DbSession, now: Now, brand: Filter = None, source: Filter = None, language: Filter = None,
    severity: Annotated[int | None, Query(ge=0, le=100, description="least incident severity")] = None,
    mine: Annotated[bool, Query(description="only posts I hold")] = False,
    limit: Limit = 50, offset: Offset = 0,
) -> PageOf[QueueItemOut]:
    filters = queue.QueueFilters(brand=brand, source=source, language=language, min_severity=severity,
                                 mine=staff.name if mine else None)
    items, total = queue.list_queue(session, filters, queue.PageRequest(limit, offset), now)
    return PageOf[QueueItemOut].build([QueueItemOut.of(i, now) for i in items], total, limit, offset)


QueueAction = Callable[[Session, datetime], object]


def _queue_action(sessions: Sessions, now: datetime, post_id: int, action: QueueAction) -> QueueItemOut:
    """Run one queue action in its own transaction and return the post's queue entry after it."""
    with transaction(sessions) as session:
        action(session, now)
    with transaction(sessions) as session:
        item = queue.get_item(session, post_id)
        assert item is not None
        return QueueItemOut.of(item, now)


@router.post("/posts/{post_id}/claim", tags=["queue"], summary="Claim a post (409 when someone else holds it)")
def claim(staff: Agent, post_id: PostId, sessions: Sessions, config: AppConfig, now: Now) -> QueueItemOut:
    minutes = config.web.claim_minutes

    def act(session: Session, now: datetime) -> None:
        if not queue.claim(session, post_id, staff.name, now, minutes):
            raise queue.explain(session, post_id, staff.name, now)

    return _queue_action(sessions, now, post_id, act)


@router.post("/posts/{post_id}/release", tags=["queue"], summary="Give a claimed post back to the queue")
def release(staff: Agent, post_id: PostId, sessions: Sessions, now: Now,
            force: Annotated[bool, Query(description="release someone else's claim (manager)")] = False) -> QueueItemOut:
    if force and not staff.can("manager"):
        raise ApiError(403, "releasing someone else's claim needs the manager role")
    return _queue_action(sessions, now, post_id, lambda s, now: queue.release(s, post_id, staff.name, now, force=force))


@router.post("/posts/{post_id}/answer", tags=["queue"], summary="Mark a post answered, with the reply's URL")
def answer(staff: Agent, post_id: PostId, body: AnswerBody, sessions: Sessions, now: Now) -> QueueItemOut:
    return _queue_action(sessions, now, post_id,
                         lambda s, now: queue.answer(s, post_id, staff.name, body.url, body.note, now))


@router.post("/posts/{post_id}/dismiss", tags=["queue"], summary="Take a post out of the queue unanswered")
def dismiss(staff: Agent, post_id: PostId, body: DismissBody, sessions: Sessions, now: Now) -> QueueItemOut:
    return _queue_action(sessions, now, post_id, lambda s, now: queue.dismiss(s, post_id, staff.name, body.reason, now))


@router.get("/incidents", tags=["incidents"], summary="Incidents, newest first")
def list_incidents(
    staff: Manager, session: DbSession, brand: Filter = None,
    status: Annotated[Literal["open", "resolved", "closed"] | None, Query()] = None,
    limit: Limit = 50, offset: Offset = 0,
) -> PageOf[IncidentOut]:
    rows = incidents.list_incidents(session, brand=brand, status=status, limit=limit, offset=offset)
    total = incidents.count_incidents(session, brand=brand, status=status)
    states = incidents_alerts(session, [i.id for i in rows])
    return PageOf[IncidentOut].build([IncidentOut.of(i, states[i.id]) for i in rows], total, limit, offset)


@router.get("/incidents/{incident_id}", tags=["incidents"], summary="One incident")
def get_incident(staff: Manager, incident: FoundIncident, session: DbSession, now: Now) -> IncidentOut:
    return _incident_out(session, incident, now)


@router.get("/incidents/{incident_id}/events", tags=["incidents"], summary="An incident's timeline, oldest first")
def incident_events(staff: Manager, incident: FoundIncident, session: DbSession, limit: Limit = 100,
                    offset: Offset = 0) -> PageOf[EventOut]:
    events = incidents.incident_events(session, incident.id, limit=limit, offset=offset)
    total = incidents.count_events(session, incident.id)
    return PageOf[EventOut].build([EventOut.of(e) for e in events], total, limit, offset)


class SnoozeBody(Body):
    until: Annotated[CleanStr, Field(min_length=1, max_length=64,
                                     description="a duration from now (30m, 2h, 1d) or an ISO time")] = "1h"


class SilenceBody(Body):
    until: Annotated[CleanStr, Field(min_length=1, max_length=64, description="30m, 2h, 1d or an ISO time")]
    reason: Annotated[CleanStr, Field(max_length=2000)] = ""


class BrandSilenceBody(SilenceBody):
    brand: Annotated[CleanStr, Field(min_length=1, max_length=200, description="a configured brand, any case")]


class AssignBody(Body):
    owner: Annotated[CleanStr, Field(min_length=1, max_length=200, description="an active user's name")]


class NoteBody(Body):
    text: Annotated[CleanStr, Field(min_length=1, max_length=5000)]


class ActionOut(BaseModel):
    changed: bool  # false: nothing to do (already acknowledged, already open, …); `message` says why
    message: str
    incident: IncidentOut | None


ACTION_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorOut, "description": "only managers and admins change incidents"},
    404: {"model": ErrorOut, "description": "no such incident"},
    422: {"model": ErrorOut, "description": "a time in the past, an unknown brand or user, an empty note"},
}
ActionRequest = incidents.IncidentAction | Callable[[datetime], incidents.IncidentAction]  # the latter: needs `now`


def incident_action(staff: Agent, sessions: Sessions, config: AppConfig, now: datetime,
                    action: ActionRequest) -> ActionOut:
    """Run one incident action through `monitor.core.incidents.perform` (the role rules live there) and answer its result."""
    try:
        with transaction(sessions) as session:
            built = action(now) if callable(action) else action
            result = incidents.perform(session, built, staff.name, now, alerting=Alerts(config.alerts),
                                       brands=[b.name for b in config.brands], via="api")
    except incidents.ActionError as exc:
        raise action_error(exc) from None
    incident = None
    if result.incident_id is not None:
        with transaction(sessions) as session:
            row = session.get(Incident, result.incident_id)
            incident = _incident_out(session, row, now) if row is not None else None
    return ActionOut(changed=result.changed, message=result.message, incident=incident)


def _incident_out(session: Session, incident: Incident, now: datetime) -> IncidentOut:
    return IncidentOut.of(incident, alerts=incident_alerts(session, incident.id),
                          silenced_until=incidents.active_silence_until(session, incident.brand, now))


def _action_without_arguments(kind: incidents.ActionKind) -> Callable[..., ActionOut]:
    """The one route body of the actions that take nothing but the incident (acknowledge, resolve, reopen)."""

    def route(staff: Agent, incident_id: IncidentId, sessions: Sessions, config: AppConfig, now: Now) -> ActionOut:
        return incident_action(staff, sessions, config, now, incidents.IncidentAction(kind, incident_id))

    route.__name__ = f"{kind}_incident"  # the OpenAPI operation's name
    return route


ACTIONS_WITHOUT_ARGUMENTS: tuple[tuple[incidents.ActionKind, str], ...] = (
    ("acknowledge", "Acknowledge: you own it and escalation stops (manager)"),
    ("resolve", "Resolve: all alerting and escalation for it stops (manager)"),
    ("reopen", "Re-open a resolved or closed incident (manager)"),
)
for _kind, _summary in ACTIONS_WITHOUT_ARGUMENTS:
    router.add_api_route(f"/incidents/{{incident_id}}/{_kind}", _action_without_arguments(_kind), methods=["POST"],
                         tags=["incidents"], responses=ACTION_RESPONSES, summary=_summary)


@router.post("/incidents/{incident_id}/snooze", tags=["incidents"], responses=ACTION_RESPONSES,
             summary="Mute the incident's alerts and pause its escalation until a time (manager)")
def snooze_incident(staff: Agent, incident_id: IncidentId, sessions: Sessions, config: AppConfig, now: Now,
                    body: SnoozeBody | None = None) -> ActionOut:
    until = (body or SnoozeBody()).until
    return incident_action(staff, sessions, config, now, lambda now: incidents.IncidentAction(
        "snooze", incident_id, until=incidents.parse_until(until, now)))


@router.post("/incidents/{incident_id}/assign", tags=["incidents"], responses=ACTION_RESPONSES,
             summary="Assign the incident to a user (manager)")
def assign_incident(staff: Agent, incident_id: IncidentId, body: AssignBody, sessions: Sessions, config: AppConfig,
                    now: Now) -> ActionOut:
    return incident_action(staff, sessions, config, now,
                           incidents.IncidentAction("assign", incident_id, owner=body.owner))


@router.post("/incidents/{incident_id}/notes", tags=["incidents"], responses=ACTION_RESPONSES,
             summary="Add a note to the incident's timeline (manager)")
def note_incident(staff: Agent, incident_id: IncidentId, body: NoteBody, sessions: Sessions, config: AppConfig,
                  now: Now) -> ActionOut:
    return incident_action(staff, sessions, config, now, incidents.IncidentAction("note", incident_id, text=body.text))


@router.post("/incidents/{incident_id}/silence", tags=["incidents"], responses=ACTION_RESPONSES,
             summary="Silence every alert about the incident's brand until a time (manager)")
def silence_incident_brand(staff: Agent, incident_id: IncidentId, body: SilenceBody, sessions: Sessions,
                           config: AppConfig, now: Now) -> ActionOut:
    return incident_action(staff, sessions, config, now, lambda now: incidents.IncidentAction(
        "silence", incident_id, until=incidents.parse_until(body.until, now), text=body.reason))


@router.post("/silences", tags=["incidents"], responses=ACTION_RESPONSES,
             summary="Silence every alert about a brand until a time (manager; brand names in any case)")
def silence_brand(staff: Agent, body: BrandSilenceBody, sessions: Sessions, config: AppConfig, now: Now) -> ActionOut:
    return incident_action(staff, sessions, config, now, lambda now: incidents.IncidentAction(
        "silence", None, until=incidents.parse_until(body.until, now), text=body.reason, brand=body.brand))


@router.get("/sources", tags=["sources"],
            summary="Every source's health: each configured one, and stored ones no longer configured")
def list_sources(staff: Manager, session: DbSession, config: AppConfig, now: Now) -> ListOf[SourceOut]:
    items = [SourceOut.of(s) for s in sources_with_status(session, config.sources(), now, connector_mode)]
    return ListOf[SourceOut](items=items, total=len(items))


@router.get("/users", tags=["accounts"], summary="Staff accounts")
def list_users(staff: Admin, session: DbSession) -> ListOf[UserOut]:
    items = [UserOut.of(u) for u in accounts.list_users(session)]
    return ListOf[UserOut](items=items, total=len(items))


def _account_error(exc: accounts.AccountError) -> ApiError:
    if isinstance(exc, accounts.AccountNotFound):
        return ApiError(404, str(exc))
    return ApiError(409 if isinstance(exc, accounts.AccountConflict) else 422, str(exc))


@router.post("/users", tags=["accounts"], status_code=201, summary="Add a staff account")
def add_user(staff: Admin, body: NewUserBody, session: DbSession, now: Now) -> UserOut:
    try:
        return UserOut.of(accounts.create_user(session, body.name, body.role, body.password, now))
    except accounts.AccountError as exc:
        raise _account_error(exc) from None  # raised out of the route: its transaction rolls back


@router.patch(
    "/users/{name}", tags=["accounts"],
    summary="Change a user's role, password, Slack id or active flag (deactivating releases their claims)",
    responses={409: {"model": ErrorOut,
                      "description": "the Slack id is someone else's, or no active admin would be left"}},
)
def change_user(staff: Admin, name: UserName, body: UserChangeBody, session: DbSession, now: Now) -> UserOut:
    try:
        changed = accounts.update_user(session, name, now, actor=staff.name, **body.model_dump(exclude_unset=True))
        return UserOut.of(changed.user)
    except accounts.AccountError as exc:
        raise _account_error(exc) from None


@router.get("/users/{name}/tokens", tags=["accounts"], summary="A user's API tokens (labels and use, not the tokens)")
def list_tokens(staff: Admin, name: UserName, session: DbSession) -> ListOf[ApiTokenOut]:
    try:
        items = [ApiTokenOut.of(t) for t in accounts.list_tokens(session, name)]
    except accounts.AccountError as exc:
        raise _account_error(exc) from None
    return ListOf[ApiTokenOut](items=items, total=len(items))


@router.delete("/users/{name}/tokens/{token_id}", tags=["accounts"], status_code=204,
               summary="Revoke an API token: requests carrying it get 401 from now on")
def revoke_token(staff: Admin, name: UserName, token_id: TokenId, session: DbSession) -> Response:
    try:
        accounts.revoke_token(session, name, token_id)
    except accounts.AccountError as exc:
        raise _account_error(exc) from None
    return Response(status_code=204)


@router.post("/users/{name}/tokens", tags=["accounts"], status_code=201,
             summary="Issue an API token (shown once)")
def add_token(staff: Admin, user: FoundUser, session: DbSession, now: Now, body: TokenBody | None = None) -> TokenOut:
    token = accounts.issue_token(session, user, body.label if body else "", now)
    return TokenOut(name=user.name, token=token)
