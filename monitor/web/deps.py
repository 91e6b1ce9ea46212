"""Typed FastAPI dependencies: what a route needs, declared in its signature (issue 16).

    def get_post(post: FoundPost, session: DbSession, now: Now, staff: Agent) -> PostDetail: ...

- `State`, `AppConfig`, `AppClock`, `Now`: the app's state (`monitor.web.state.WebState`) and parts of it;
- `DbSession`: one transaction around the route function, committed before the answer is sent and
  rolled back when the function raises; `Sessions` (the factory) for a route that needs more than one;
- `Agent`/`Manager`/`Admin` (bearer token) and `PageAgent`/`PageManager`/`PageAdmin` (login):
  the current user, who must hold at least that role;
- `FoundPost`, `FoundIncident`, `FoundUser` (API) and `PagePost`, `PageIncident` (pages): the row
  named by the path, or a 404; `PagePostId`: a page's post id that can exist, or a 404.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Path
from pydantic import AfterValidator
from sqlalchemy.orm import Session, sessionmaker

from monitor.config import Config
from monitor.core import accounts, incidents
from monitor.core.clock import Clock
from monitor.core.storage.db import transaction
from monitor.core.storage.schema import Incident, Post, User
from monitor.web.auth import Staff, api_role, page_role
from monitor.web.errors import ApiError, action_error
from monitor.web.state import WebState, state_dependency

MAX_ID = 2**63 - 1  # larger ids cannot exist and would overflow PostgreSQL's bigint

State = Annotated[WebState, Depends(state_dependency)]


# The plain look-ups are coroutines so that FastAPI runs them on the event loop, not in a worker thread.
async def _config(state: State) -> Config:
    return state.config


async def _clock(state: State) -> Clock:
    return state.clock


async def _now(state: State) -> datetime:
    return state.clock.now()


async def _sessions(state: State) -> sessionmaker[Session]:
    return state.sessions


def _db_session(state: State) -> Iterator[Session]:
    with transaction(state.sessions) as session:
        yield session


AppConfig = Annotated[Config, Depends(_config)]
AppClock = Annotated[Clock, Depends(_clock)]
Now = Annotated[datetime, Depends(_now)]  # one instant for the whole request
Sessions = Annotated[sessionmaker[Session], Depends(_sessions)]
# scope="function": the commit happens before the answer is sent, so a failed commit is the answer
# (503 for a locked database) rather than a success the client already has.
DbSession = Annotated[Session, Depends(_db_session, scope="function")]

Agent = Annotated[Staff, Depends(api_role("agent"))]
Manager = Annotated[Staff, Depends(api_role("manager"))]
Admin = Annotated[Staff, Depends(api_role("admin"))]
PageAgent = Annotated[Staff, Depends(page_role("agent"))]
PageManager = Annotated[Staff, Depends(page_role("manager"))]
PageAdmin = Annotated[Staff, Depends(page_role("admin"))]


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


CleanStr = Annotated[str, AfterValidator(_no_nul)]  # text from outside that will be stored or looked up

# Path parameters of the API: out of range is a 422 there; pages take any int and answer 404.
PostId = Annotated[int, Path(ge=1, le=MAX_ID, description="the post's id")]
IncidentId = Annotated[int, Path(ge=1, le=MAX_ID, description="the incident's id")]
UserName = Annotated[CleanStr, Path(max_length=200, description="the user's name")]


def _post(session: Session, post_id: int) -> Post:
    post = session.get(Post, post_id) if 1 <= post_id <= MAX_ID else None
    if post is None:
        raise ApiError(404, f"post {post_id} does not exist")
    return post


def _incident(session: Session, incident_id: int) -> Incident:
    if not 1 <= incident_id <= MAX_ID:
        raise ApiError(404, f"incident {incident_id} does not exist")
    try:
        return incidents.get_incident(session, incident_id)
    except incidents.IncidentNotFound as exc:
        raise action_error(exc) from None


def post_or_404(post_id: PostId, session: DbSession) -> Post:
    return _post(session, post_id)


def incident_or_404(incident_id: IncidentId, session: DbSession) -> Incident:
    return _incident(session, incident_id)


def user_or_404(name: UserName, session: DbSession) -> User:
    user = accounts.get_user(session, name)
    if user is None:
        raise ApiError(404, f"user {name!r} does not exist")
    return user


async def page_post_id(post_id: int) -> int:
    """A page's post id: any int in the path; one that cannot exist is a 404 (not a 422) there."""
    if not 1 <= post_id <= MAX_ID:
        raise ApiError(404, f"post {post_id} does not exist")
    return post_id


PagePostId = Annotated[int, Depends(page_post_id)]


def page_post_or_404(post_id: PagePostId, session: DbSession) -> Post:
    return _post(session, post_id)


def page_incident_or_404(incident_id: int, session: DbSession) -> Incident:
    return _incident(session, incident_id)


FoundPost = Annotated[Post, Depends(post_or_404)]
FoundIncident = Annotated[Incident, Depends(incident_or_404)]
FoundUser = Annotated[User, Depends(user_or_404)]
PagePost = Annotated[Post, Depends(page_post_or_404)]
PageIncident = Annotated[Incident, Depends(page_incident_or_404)]
