"""The REST API under /api: posts, the queue and its actions, incidents, sources, users.

Roles: agent reads posts and works the queue; manager also sees incidents and sources and may
release anyone's claim; admin also manages users and tokens. Lists are paged with limit/offset
and return `next_offset` (null on the last page).
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import AfterValidator, BaseModel, Field, field_validator
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from alerts.health import incident_alerts, incidents_alerts
from alerts.routing import Alerts
from connectors.registry import connector_mode
from monitor.core import accounts, incidents, queue
from monitor.core.escape import http_url
from monitor.core.settings import Strict
from monitor.core.storage.db import transaction
from monitor.core.storage.schema import Incident, Post, Source
from monitor.web.auth import Staff, api_role
from monitor.web.errors import ERROR_RESPONSES, ApiError, ErrorOut
from monitor.web.views import (
    ApiTokenOut, EventOut, IncidentOut, ListOf, Me, PageOf, PostDetail, PostOut, QueueItemOut, SourceOut, TokenOut,
    UserOut, source_expectations, source_status,
)

MAX_ID = 2**63 - 1  # larger ids cannot exist and would overflow PostgreSQL's bigint


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


CleanStr = Annotated[str, AfterValidator(_no_nul)]
PostId = Annotated[int, Path(ge=1, le=MAX_ID, description="the post's id")]
IncidentId = Annotated[int, Path(ge=1, le=MAX_ID)]
UserName = Annotated[CleanStr, Path(max_length=200, description="the user's name")]
TokenId = Annotated[int, Path(ge=1, le=MAX_ID, description="the token's id, from the token list")]
Filter = Annotated[CleanStr | None, Query(max_length=200)]
Limit = Annotated[int, Query(ge=1, le=200, description="page size")]
Offset = Annotated[int, Query(ge=0, le=10**9, description="rows to skip; use the previous page's next_offset")]

agent = api_role("agent")
manager = api_role("manager")
admin = api_role("admin")


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


def _state(request: Request) -> Any:
    return request.app.state


router = APIRouter(prefix="/api", responses=ERROR_RESPONSES)


@router.get("/me", tags=["accounts"], summary="The token's user")
def me(staff: Staff = Depends(agent)) -> Me:
    return Me(name=staff.name, role=staff.role)


def _page(session: Session, query: Select[Any], order: tuple[Any, ...], limit: int, offset: int) -> tuple[list[Any], int]:
    """One page of a query's rows in the given order, and how many rows there are in all."""
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    return list(session.scalars(query.order_by(*order).limit(limit).offset(offset))), total


@router.get("/posts", tags=["posts"], summary="Stored posts, newest first")
def list_posts(request: Request, brand: Filter = None, source: Filter = None, limit: Limit = 50,
               offset: Offset = 0, staff: Staff = Depends(agent)) -> PageOf[PostOut]:
    query = select(Post)
    if brand:
        query = query.where(Post.brand == brand)
    if source:
        query = query.where(Post.source == source)
    with transaction(_state(request).sessions) as session:
        posts, total = _page(session, query, (Post.created_at.desc(), Post.id.desc()), limit, offset)
        return PageOf[PostOut].build([PostOut.of(p) for p in posts], total, limit, offset)


@router.get("/posts/{post_id}", tags=["posts"], summary="One post, its queue entry and its history")
def get_post(request: Request, post_id: PostId, staff: Staff = Depends(agent)) -> PostDetail:
    state = _state(request)
    with transaction(state.sessions) as session:
        post = session.get(Post, post_id)
        if post is None:
            raise ApiError(404, f"post {post_id} does not exist")
        item = queue.get_item(session, post_id)
        sentiment, label = queue.latest_verdicts(session, [post_id]).get(post_id, (None, None))
        return PostDetail(
            post=PostOut.of(post), queue=QueueItemOut.of(item, state.clock.now()) if item else None,
            history=[EventOut.of(e) for e in queue.history(session, post_id)],
            sentiment=sentiment, label=label, incident_id=queue.incident_of_post(session, post_id),
        )


@router.get("/queue", tags=["queue"], summary="Flagged posts waiting for an answer, most urgent first")
def list_queue(
    request: Request, brand: Filter = None, source: Filter = None, language: Filter = None,
    severity: Annotated[int | None, Query(ge=0, le=100, description="least incident severity")] = None,
    mine: Annotated[bool, Query(description="only posts I hold")] = False,
    limit: Limit = 50, offset: Offset = 0, staff: Staff = Depends(agent),
) -> PageOf[QueueItemOut]:
    state = _state(request)
    now = state.clock.now()
    filters = queue.QueueFilters(brand=brand, source=source, language=language, min_severity=severity,
                                 mine=staff.name if mine else None)
    with transaction(state.sessions) as session:
        items, total = queue.list_queue(session, filters, queue.PageRequest(limit, offset), now)
        return PageOf[QueueItemOut].build([QueueItemOut.of(i, now) for i in items], total, limit, offset)


def _queue_action(request: Request, post_id: int, action: Any) -> QueueItemOut:
    """Run one queue action in its own transaction and return the post's queue entry after it."""
    state = _state(request)
    now = state.clock.now()
    with transaction(state.sessions) as session:
        action(session, now)
    with transaction(state.sessions) as session:
        item = queue.get_item(session, post_id)
        assert item is not None
        return QueueItemOut.of(item, now)


@router.post("/posts/{post_id}/claim", tags=["queue"], summary="Claim a post (409 when someone else holds it)")
def claim(request: Request, post_id: PostId, staff: Staff = Depends(agent)) -> QueueItemOut:
    minutes = _state(request).config.web.claim_minutes

    def act(session: Session, now: Any) -> None:
        if not queue.claim(session, post_id, staff.name, now, minutes):
            raise queue.explain(session, post_id, staff.name, now)

    return _queue_action(request, post_id, act)


@router.post("/posts/{post_id}/release", tags=["queue"], summary="Give a claimed post back to the queue")
def release(request: Request, post_id: PostId,
            force: Annotated[bool, Query(description="release someone else's claim (manager)")] = False,
            staff: Staff = Depends(agent)) -> QueueItemOut:
    if force and not staff.can("manager"):
        raise ApiError(403, "releasing someone else's claim needs the manager role")
    return _queue_action(request, post_id, lambda s, now: queue.release(s, post_id, staff.name, now, force=force))


@router.post("/posts/{post_id}/answer", tags=["queue"], summary="Mark a post answered, with the reply's URL")
def answer(request: Request, post_id: PostId, body: AnswerBody, staff: Staff = Depends(agent)) -> QueueItemOut:
    return _queue_action(request, post_id,
                         lambda s, now: queue.answer(s, post_id, staff.name, body.url, body.note, now))


@router.post("/posts/{post_id}/dismiss", tags=["queue"], summary="Take a post out of the queue unanswered")
def dismiss(request: Request, post_id: PostId, body: DismissBody, staff: Staff = Depends(agent)) -> QueueItemOut:
    return _queue_action(request, post_id, lambda s, now: queue.dismiss(s, post_id, staff.name, body.reason, now))


def _incident(session: Session, incident_id: int) -> Incident:
    try:
        return incidents.get_incident(session, incident_id)
    except incidents.IncidentNotFound as exc:
        raise ApiError(404, str(exc)) from None


@router.get("/incidents", tags=["incidents"], summary="Incidents, newest first")
def list_incidents(
    request: Request, brand: Filter = None,
    status: Annotated[Literal["open", "resolved", "closed"] | None, Query()] = None,
    limit: Limit = 50, offset: Offset = 0, staff: Staff = Depends(manager),
) -> PageOf[IncidentOut]:
    with transaction(_state(request).sessions) as session:
        rows = incidents.list_incidents(session, brand=brand, status=status, limit=limit, offset=offset)
        total = incidents.count_incidents(session, brand=brand, status=status)
        states = incidents_alerts(session, [i.id for i in rows])
        return PageOf[IncidentOut].build([IncidentOut.of(i, states[i.id]) for i in rows], total, limit, offset)


@router.get("/incidents/{incident_id}", tags=["incidents"], summary="One incident")
def get_incident(request: Request, incident_id: IncidentId, staff: Staff = Depends(manager)) -> IncidentOut:
    with transaction(_state(request).sessions) as session:
        incident = _incident(session, incident_id)
        return _incident_out(session, incident, _state(request).clock.now())


@router.get("/incidents/{incident_id}/events", tags=["incidents"], summary="An incident's timeline, oldest first")
def incident_events(request: Request, incident_id: IncidentId, limit: Limit = 100, offset: Offset = 0,
                    staff: Staff = Depends(manager)) -> PageOf[EventOut]:
    with transaction(_state(request).sessions) as session:
        _incident(session, incident_id)
        events = incidents.incident_events(session, incident_id, limit=limit, offset=offset)
        total = incidents.count_events(session, incident_id)
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


def incident_action(request: Request, staff: Staff, action: Any) -> ActionOut:
    """Run one incident action through `monitor.core.incidents.perform` (the role rules live there) and answer its result."""
    state = _state(request)
    now = state.clock.now()
    try:
        with transaction(state.sessions) as session:
            built = action(now) if callable(action) else action
            result = incidents.perform(session, built, staff.name, now, alerting=Alerts(state.config.alerts),
                                       brands=[b.name for b in state.config.brands], via="api")
    except incidents.IncidentNotFound as exc:
        raise ApiError(404, str(exc)) from None
    except incidents.ActionForbidden as exc:
        raise ApiError(403, str(exc)) from None
    except incidents.ActionError as exc:
        raise ApiError(422, str(exc)) from None
    incident = None
    if result.incident_id is not None:
        with transaction(state.sessions) as session:
            row = session.get(Incident, result.incident_id)
            incident = _incident_out(session, row, now) if row is not None else None
    return ActionOut(changed=result.changed, message=result.message, incident=incident)


def _incident_out(session: Session, incident: Incident, now: Any) -> IncidentOut:
    return IncidentOut.of(incident, alerts=incident_alerts(session, incident.id),
                          silenced_until=incidents.active_silence_until(session, incident.brand, now))


@router.post("/incidents/{incident_id}/acknowledge", tags=["incidents"], responses=ACTION_RESPONSES,
             summary="Acknowledge: you own it and escalation stops (manager)")
def acknowledge_incident(request: Request, incident_id: IncidentId, staff: Staff = Depends(agent)) -> ActionOut:
    return incident_action(request, staff, incidents.IncidentAction("acknowledge", incident_id))


@router.post("/incidents/{incident_id}/snooze", tags=["incidents"], responses=ACTION_RESPONSES,
             summary="Mute the incident's alerts and pause its escalation until a time (manager)")
def snooze_incident(request: Request, incident_id: IncidentId, body: SnoozeBody | None = None,
                    staff: Staff = Depends(agent)) -> ActionOut:
    until = (body or SnoozeBody()).until
    return incident_action(request, staff, lambda now: incidents.IncidentAction(
        "snooze", incident_id, until=incidents.parse_until(until, now)))


@router.post("/incidents/{incident_id}/resolve", tags=["incidents"], responses=ACTION_RESPONSES,
             summary="Resolve: all alerting and escalation for it stops (manager)")
def resolve_incident(request: Request, incident_id: IncidentId, staff: Staff = Depends(agent)) -> ActionOut:
    return incident_action(request, staff, incidents.IncidentAction("resolve", incident_id))


@router.post("/incidents/{incident_id}/reopen", tags=["incidents"], responses=ACTION_RESPONSES,
             summary="Re-open a resolved or closed incident (manager)")
def reopen_incident(request: Request, incident_id: IncidentId, staff: Staff = Depends(agent)) -> ActionOut:
    return incident_action(request, staff, incidents.IncidentAction("reopen", incident_id))


@router.post("/incidents/{incident_id}/assign", tags=["incidents"], responses=ACTION_RESPONSES,
             summary="Assign the incident to a user (manager)")
def assign_incident(request: Request, incident_id: IncidentId, body: AssignBody,
                    staff: Staff = Depends(agent)) -> ActionOut:
    return incident_action(request, staff, incidents.IncidentAction("assign", incident_id, owner=body.owner))


@router.post("/incidents/{incident_id}/notes", tags=["incidents"], responses=ACTION_RESPONSES,
             summary="Add a note to the incident's timeline (manager)")
def note_incident(request: Request, incident_id: IncidentId, body: NoteBody, staff: Staff = Depends(agent)) -> ActionOut:
    return incident_action(request, staff, incidents.IncidentAction("note", incident_id, text=body.text))


@router.post("/incidents/{incident_id}/silence", tags=["incidents"], responses=ACTION_RESPONSES,
             summary="Silence every alert about the incident's brand until a time (manager)")
def silence_incident_brand(request: Request, incident_id: IncidentId, body: SilenceBody,
                           staff: Staff = Depends(agent)) -> ActionOut:
    return incident_action(request, staff, lambda now: incidents.IncidentAction(
        "silence", incident_id, until=incidents.parse_until(body.until, now), text=body.reason))


@router.post("/silences", tags=["incidents"], responses=ACTION_RESPONSES,
             summary="Silence every alert about a brand until a time (manager; brand names in any case)")
def silence_brand(request: Request, body: BrandSilenceBody, staff: Staff = Depends(agent)) -> ActionOut:
    return incident_action(request, staff, lambda now: incidents.IncidentAction(
        "silence", None, until=incidents.parse_until(body.until, now), text=body.reason, brand=body.brand))


@router.get("/sources", tags=["sources"], summary="Every source's health")
def list_sources(request: Request, staff: Staff = Depends(manager)) -> ListOf[SourceOut]:
    state = _state(request)
    expected, now = source_expectations(state.config), state.clock.now()
    with transaction(state.sessions) as session:
        rows = session.scalars(select(Source).order_by(Source.brand, Source.name))
        items = [SourceOut.of(s, source_status(s, expected.get(s.name), now),
                              expected[s.name].mode if s.name in expected else connector_mode(s.kind)) for s in rows]
    return ListOf[SourceOut](items=items, total=len(items))


@router.get("/users", tags=["accounts"], summary="Staff accounts")
def list_users(request: Request, staff: Staff = Depends(admin)) -> ListOf[UserOut]:
    with transaction(_state(request).sessions) as session:
        items = [UserOut.of(u) for u in accounts.list_users(session)]
    return ListOf[UserOut](items=items, total=len(items))


def _account_error(exc: accounts.AccountError) -> ApiError:
    if isinstance(exc, accounts.AccountNotFound):
        return ApiError(404, str(exc))
    return ApiError(409 if isinstance(exc, accounts.AccountConflict) else 422, str(exc))


@router.post("/users", tags=["accounts"], status_code=201, summary="Add a staff account")
def add_user(request: Request, body: NewUserBody, staff: Staff = Depends(admin)) -> UserOut:
    state = _state(request)
    try:
        with transaction(state.sessions) as session:
            user = accounts.create_user(session, body.name, body.role, body.password, state.clock.now())
            return UserOut.of(user)
    except accounts.AccountError as exc:
        raise _account_error(exc) from None


@router.patch(
    "/users/{name}", tags=["accounts"],
    summary="Change a user's role, password, Slack id or active flag (deactivating releases their claims)",
    responses={409: {"model": ErrorOut,
                      "description": "the Slack id is someone else's, or no active admin would be left"}},
)
def change_user(request: Request, name: UserName, body: UserChangeBody, staff: Staff = Depends(admin)) -> UserOut:
    state = _state(request)
    try:
        with transaction(state.sessions) as session:
            changed = accounts.update_user(session, name, state.clock.now(), actor=staff.name,
                                           **body.model_dump(exclude_unset=True))
            return UserOut.of(changed.user)
    except accounts.AccountError as exc:
        raise _account_error(exc) from None


@router.get("/users/{name}/tokens", tags=["accounts"], summary="A user's API tokens (labels and use, not the tokens)")
def list_tokens(request: Request, name: UserName, staff: Staff = Depends(admin)) -> ListOf[ApiTokenOut]:
    try:
        with transaction(_state(request).sessions) as session:
            items = [ApiTokenOut.of(t) for t in accounts.list_tokens(session, name)]
    except accounts.AccountError as exc:
        raise _account_error(exc) from None
    return ListOf[ApiTokenOut](items=items, total=len(items))


@router.delete("/users/{name}/tokens/{token_id}", tags=["accounts"], status_code=204,
               summary="Revoke an API token: requests carrying it get 401 from now on")
def revoke_token(request: Request, name: UserName, token_id: TokenId, staff: Staff = Depends(admin)) -> Response:
    try:
        with transaction(_state(request).sessions) as session:
            accounts.revoke_token(session, name, token_id)
    except accounts.AccountError as exc:
        raise _account_error(exc) from None
    return Response(status_code=204)


@router.post("/users/{name}/tokens", tags=["accounts"], status_code=201,
             summary="Issue an API token (shown once)")
def add_token(request: Request, name: UserName, body: TokenBody | None = None,
              staff: Staff = Depends(admin)) -> TokenOut:
    state = _state(request)
    with transaction(state.sessions) as session:
        user = accounts.get_user(session, name)
        if user is None:
            raise ApiError(404, f"user {name!r} does not exist")
        token = accounts.issue_token(session, user, body.label if body else "", state.clock.now())
    return TokenOut(name=name, token=token)
