"""Who is asking, and may they: bearer tokens for the API, a signed session cookie for pages.

Every route depends on `api_role(...)` or `page_role(...)` with the least role it needs, so a
route without one is visible in review. Page forms carry a per-session CSRF token.
"""
from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from monitor.core.accounts import get_user, has_role, login_fingerprint, user_for_token
from monitor.core.storage.db import transaction
from monitor.web.errors import ApiError, LoginRequired
from monitor.web.state import WebState, state_dependency, web_state

_bearer = HTTPBearer(auto_error=False, description="an API token from `flarewatch users token NAME`")


@dataclass(frozen=True)
class Staff:
    name: str
    role: str

    def can(self, needed: str) -> bool:
        return has_role(self.role, needed)


def api_role(needed: str) -> Callable[..., Staff]:
    """Dependency: the token's user, who must hold at least `needed`."""

    def dependency(state: Annotated[WebState, Depends(state_dependency)],
                   credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Staff:
        if credentials is None:
            raise ApiError(401, "an API token is required (Authorization: Bearer ...)")
        with transaction(state.sessions) as session:
            user = user_for_token(session, credentials.credentials, state.clock.now())
            staff = Staff(user.name, user.role) if user is not None else None
        if staff is None:
            raise ApiError(401, "unknown or revoked API token")
        if not staff.can(needed):
            raise ApiError(403, f"this needs the {needed} role; {staff.name} is {staff.role}")
        return staff

    return dependency


def _session_user(request: Request, state: WebState) -> Staff | None:
    """The session's user while their login is current (active, and no password change since)."""
    name = request.session.get("user")
    if not isinstance(name, str):
        return None
    with transaction(state.sessions) as session:
        user = get_user(session, name)
        current = (user is not None and user.active
                   and hmac.compare_digest(str(request.session.get("login", "")), login_fingerprint(user)))
        return Staff(user.name, user.role) if user is not None and current else None


def page_user(request: Request) -> Staff | None:
    """The logged-in user of a page, or None (never raises): error pages use it to keep the nav bar."""
    return _session_user(request, web_state(request)) if "session" in request.scope else None


def page_role(needed: str) -> Callable[..., Staff]:
    """Dependency: the logged-in user of a page, who must hold at least `needed`."""

    def dependency(request: Request, state: Annotated[WebState, Depends(state_dependency)]) -> Staff:
        staff = _session_user(request, state)
        if staff is None:
            if isinstance(request.session.get("user"), str):  # a login that ended: forget it
                request.session.clear()
            raise LoginRequired()
        if not staff.can(needed):
            raise ApiError(403, f"this page needs the {needed} role; you are {staff.role}")
        return staff

    return dependency


def session_csrf(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def verify_csrf(request: Request, submitted: str | None) -> None:
    expected = request.session.get("csrf")
    if not isinstance(expected, str) or not submitted or not hmac.compare_digest(expected, submitted):
        raise ApiError(403, "the form expired or did not come from this site; reload the page and try again",
                       "csrf")
