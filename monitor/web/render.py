"""Rendering a staff page from its template, with what every page shows (user, CSRF token, flash,
the alert-delivery banner)."""
from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from monitor.core.storage.db import transaction
from monitor.web.auth import Staff, session_csrf
from monitor.web.health import HealthContext, alerts_check
from monitor.web.state import WebState, web_state


def render(request: Request, template: str, staff: Staff | None, status_code: int = 200, *, fragment: bool = False,
           **context: Any) -> Response:
    """A page (or, for live refreshes, a fragment: it leaves the one-time flash message for the page).

    A live page's own refresh (`X-Live` header, from live.js) also leaves the flash message alone."""
    state = web_state(request)
    fragment = fragment or request.headers.get("x-live") == "1"
    return state.templates.TemplateResponse(
        request, template,
        {"user": staff, "csrf": session_csrf(request), "now": state.clock.now(), "config": state.config,
         "flash": None if fragment else request.session.pop("flash", None),
         "alert_banner": None if fragment or staff is None else alert_banner(state), **context},
        status_code=status_code,
    )


def alert_banner(state: WebState) -> list[str] | None:
    """What is wrong with alert delivery right now (the same reasons /healthz gives), for a banner on every page."""
    daemon = None
    if state.health is not None:
        try:
            daemon = state.health()
        except Exception:  # noqa: BLE001 - /healthz reports that; the page still renders
            daemon = None
    with transaction(state.sessions) as session:
        check = alerts_check(HealthContext(state.config, state.sessions, session, state.clock.now(), daemon))
    return [r.message for r in check.reasons] or None
