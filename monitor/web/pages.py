"""Server-rendered pages: login, the queue (with live refresh), a post, incidents, sources, staff accounts.

Forms post back with a CSRF token and redirect (303) to where the person was, with a one-line
flash message; the queue list refreshes itself by fetching `/queue/rows` every few seconds.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from alerts.health import incident_alerts, incidents_alerts
from alerts.routing import Alerts
from connectors.registry import connector_mode
from monitor.core import accounts, incidents, queue
from monitor.core.settings import describe_errors
from monitor.core.sources import sources_with_status
from monitor.core.storage.db import transaction
from monitor.core.storage.schema import Incident
from monitor.web.api import AnswerBody, DismissBody
from monitor.web.auth import Staff, session_csrf, verify_csrf
from monitor.web.deps import (
    MAX_ID, AppConfig, DbSession, Now, PageAdmin, PageAgent, PageIncident, PageManager, PagePost, PagePostId, Sessions,
    State,
)
from monitor.web.errors import action_error
from monitor.web.render import render
from monitor.web.reports import incident_section

router = APIRouter(include_in_schema=False)
FILTER_KEYS = ("brand", "source", "language", "severity", "mine")
PAGE_SIZE = 100


def _local(target: str | None, default: str = "/queue") -> str:
    """Only same-site paths are redirect targets (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def _filters(request: Request, staff: Staff) -> tuple[queue.QueueFilters, dict[str, str]]:
    raw = {k: request.query_params.get(k, "").strip()[:200].replace("\x00", "") for k in FILTER_KEYS}
    severity = int(raw["severity"]) if raw["severity"].isdigit() and len(raw["severity"]) < 4 else None
    filters = queue.QueueFilters(brand=raw["brand"] or None, source=raw["source"] or None,
                                 language=raw["language"] or None, min_severity=severity,
                                 mine=staff.name if raw["mine"] else None)
    return filters, raw


@router.get("/", response_class=HTMLResponse)
def home() -> Response:
    return RedirectResponse("/queue", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/queue") -> Response:
    return render(request, "login.html", None, next=_local(next))


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, state: State, session: DbSession, username: Annotated[str, Form(max_length=200)] = "",
          password: Annotated[str, Form(max_length=1000)] = "", csrf_token: Annotated[str, Form()] = "",
          next: Annotated[str, Form()] = "/queue") -> Response:
    verify_csrf(request, csrf_token)
    throttle, address = state.login_throttle, request.client.host if request.client else "unknown"
    wait = throttle.retry_after(username, address)
    if wait is not None:
        response = render(request, "login.html", None, status_code=429, next=_local(next), username=username,
                          error=f"Too many wrong passwords. Try again in {math.ceil(wait / 60)} min.")
        response.headers["Retry-After"] = str(wait)
        return response
    user, fingerprint = None, ""
    if username and password and "\x00" not in username:
        found = accounts.authenticate(session, username, password)
        if found is not None:
            user, fingerprint = Staff(found.name, found.role), accounts.login_fingerprint(found)
    if user is None:
        throttle.failed(username, address)
        return render(request, "login.html", None, status_code=401, next=_local(next),
                      error="Wrong user name or password.", username=username)
    throttle.succeeded(username)
    request.session.clear()  # a fresh session and CSRF token at each login
    request.session["user"], request.session["login"] = user.name, fingerprint
    session_csrf(request)  # now, so concurrent first requests cannot mint two different tokens
    return RedirectResponse(_local(next), status_code=303)


@router.post("/logout")
def logout(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
    verify_csrf(request, csrf_token)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


def _page_number(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    return int(raw) if raw.isdigit() and 0 < len(raw) < 7 and int(raw) > 0 else 1


def _queue_context(request: Request, staff: Staff, session: Session, now: datetime) -> dict[str, Any]:
    filters, raw = _filters(request, staff)
    page = _page_number(request)
    items, total = queue.list_queue(session, filters, queue.PageRequest(PAGE_SIZE, (page - 1) * PAGE_SIZE), now)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    if page > pages:  # the queue shrank under the person's feet: show its last page
        page = pages
        items, _ = queue.list_queue(session, filters, queue.PageRequest(PAGE_SIZE, (page - 1) * PAGE_SIZE), now)
    query = {k: v for k, v in raw.items() if v}
    here = urlencode({**query, "page": page} if page > 1 else query)
    return {"items": items, "total": total, "filters": raw, "query": here, "page": page, "pages": pages,
            "first_index": (page - 1) * PAGE_SIZE + 1 if items else 0,
            "page_url": lambda n: _url("/queue", {**query, "page": n} if n > 1 else query)}


def _url(path: str, query: dict[str, Any]) -> str:
    return f"{path}?{urlencode(query)}" if query else path


@router.get("/queue", response_class=HTMLResponse)
def queue_page(staff: PageAgent, request: Request, session: DbSession, now: Now) -> Response:
    return render(request, "queue.html", staff, **_queue_context(request, staff, session, now))


@router.get("/queue/rows", response_class=HTMLResponse)
def queue_rows(staff: PageAgent, request: Request, session: DbSession, now: Now) -> Response:
    """The queue list alone, for the page's live refresh."""
    return render(request, "_queue_rows.html", staff, fragment=True, **_queue_context(request, staff, session, now))


QueueAction = Callable[[Session, datetime], object]


def _act(request: Request, sessions: Sessions, now: datetime, target: str, post_id: int, action: QueueAction,
         done: str) -> Response:
    """Run a queue action in its own transaction (a refusal rolls it back and becomes the flash message)."""
    try:
        with transaction(sessions) as session:
            action(session, now)
        request.session["flash"] = done
    except queue.QueueError as exc:
        request.session["flash"] = f"Not done: {exc}"
    return RedirectResponse(_local(target, f"/posts/{post_id}"), status_code=303)


def _invalid(request: Request, post_id: int, exc: ValidationError) -> Response:
    """A form field was wrong: back to the post with what to fix."""
    request.session["flash"] = f"Not done: {describe_errors(exc)}"
    return RedirectResponse(f"/posts/{post_id}", status_code=303)


@router.post("/posts/{post_id}/claim")
def claim(staff: PageAgent, request: Request, post_id: PagePostId, sessions: Sessions, config: AppConfig, now: Now,
          csrf_token: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/queue") -> Response:
    verify_csrf(request, csrf_token)
    minutes = config.web.claim_minutes

    def act(session: Session, now: datetime) -> None:
        if not queue.claim(session, post_id, staff.name, now, minutes):
            raise queue.explain(session, post_id, staff.name, now)

    return _act(request, sessions, now, next, post_id, act, f"Post {post_id} is yours for {minutes:g} minutes.")


@router.post("/posts/{post_id}/release")
def release(staff: PageAgent, request: Request, post_id: PagePostId, sessions: Sessions, now: Now,
            csrf_token: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/queue",
            force: Annotated[str, Form()] = "") -> Response:
    verify_csrf(request, csrf_token)
    forced = bool(force) and staff.can("manager")
    return _act(request, sessions, now, next, post_id,
                lambda s, now: queue.release(s, post_id, staff.name, now, force=forced),
                f"Post {post_id} is back in the queue.")


@router.post("/posts/{post_id}/answer")
def answer(staff: PageAgent, request: Request, post_id: PagePostId, sessions: Sessions, now: Now,
           csrf_token: Annotated[str, Form()] = "", url: Annotated[str, Form(max_length=2000)] = "",
           note: Annotated[str, Form(max_length=5000)] = "", next: Annotated[str, Form()] = "/queue") -> Response:
    verify_csrf(request, csrf_token)
    try:
        body = AnswerBody(url=url, note=note or None)
    except ValidationError as exc:
        return _invalid(request, post_id, exc)
    return _act(request, sessions, now, next, post_id,
                lambda s, now: queue.answer(s, post_id, staff.name, body.url, body.note, now), f"Post {post_id} answered.")


@router.post("/posts/{post_id}/dismiss")
def dismiss(staff: PageAgent, request: Request, post_id: PagePostId, sessions: Sessions, now: Now,
            csrf_token: Annotated[str, Form()] = "", reason: Annotated[str, Form(max_length=2000)] = "",
            next: Annotated[str, Form()] = "/queue") -> Response:
    verify_csrf(request, csrf_token)
    try:
        body = DismissBody(reason=reason.strip())
    except ValidationError as exc:
        return _invalid(request, post_id, exc)
    return _act(request, sessions, now, next, post_id,
                lambda s, now: queue.dismiss(s, post_id, staff.name, body.reason, now), f"Post {post_id} dismissed.")


@router.get("/posts/{post_id}", response_class=HTMLResponse)
def post_page(staff: PageAgent, request: Request, post: PagePost, session: DbSession) -> Response:
    pid = post.id
    item = queue.get_item(session, pid)
    incident_id = queue.incident_of_post(session, pid)
    incident = session.get(Incident, incident_id) if incident_id else None
    sentiment, label = queue.latest_verdicts(session, [pid]).get(pid, (None, None))
    events = queue.history(session, pid)
    return render(request, "post.html", staff, post=post, item=item, incident=incident, events=events,
                  sentiment=sentiment, label=label)


@router.get("/incidents", response_class=HTMLResponse)
def incidents_page(staff: PageManager, request: Request, session: DbSession) -> Response:
    rows = incidents.list_incidents(session, limit=200)
    alert_states = incidents_alerts(session, [i.id for i in rows])
    return render(request, "incidents.html", staff, incidents=rows, alert_states=alert_states)


def _incident_state(session: Session, incident: Incident, now: datetime) -> dict[str, Any]:
    """What the incident page's live state panel shows: status, who acknowledged, snooze, silence, owner, alerts."""
    users = [u.name for u in accounts.list_users(session) if u.active]
    return {"incident": incident, "alerts": incident_alerts(session, incident.id), "users": users,
            "silenced_until": incidents.active_silence_until(session, incident.brand, now),
            "snoozed": incident.snoozed_until is not None and incident.snoozed_until > now}


@router.get("/incidents/{incident_id}", response_class=HTMLResponse)
def incident_page(staff: PageManager, request: Request, incident: PageIncident, session: DbSession,
                  config: AppConfig, now: Now) -> Response:
    context = _incident_state(session, incident, now)
    events = incidents.incident_events(session, incident.id)
    report = incident_section(session, config, incident.id, now)
    return render(request, "incident.html", staff, events=events, report=report, **context)


@router.get("/incidents/{incident_id}/state", response_class=HTMLResponse)
def incident_state(staff: PageManager, request: Request, incident: PageIncident, session: DbSession,
                   now: Now) -> Response:
    """The state panel alone, for the page's live refresh (and after an action, without a reload)."""
    return render(request, "_incident_state.html", staff, fragment=True, **_incident_state(session, incident, now))


PAGE_ACTIONS = ("acknowledge", "snooze", "resolve", "reopen", "silence", "assign", "note")


@router.post("/incidents/{incident_id}/actions")
def incident_action(staff: PageAgent, request: Request, incident_id: int, sessions: Sessions, config: AppConfig,
                    now: Now, csrf_token: Annotated[str, Form()] = "", action: Annotated[str, Form(max_length=20)] = "",
                    until: Annotated[str, Form(max_length=64)] = "", owner: Annotated[str, Form(max_length=200)] = "",
                    text: Annotated[str, Form(max_length=5000)] = "",
                    reason: Annotated[str, Form(max_length=2000)] = "") -> Response:
    """Every incident form posts here; the role check is `monitor.core.incidents.perform`'s, as for the API, Slack and CLI.

    A script sends `Accept: application/json` and gets {changed, message}; a plain form gets a redirect."""
    verify_csrf(request, csrf_token)
    wants_json = "application/json" in request.headers.get("accept", "")
    status = 200
    try:
        if not 1 <= incident_id <= MAX_ID:
            raise incidents.IncidentNotFound(f"incident {incident_id} does not exist")
        if action not in PAGE_ACTIONS:
            raise incidents.ActionInvalid(f"unknown action {action!r}")
        when = incidents.parse_until(until or "1h", now) if action in ("snooze", "silence") else None
        request_ = incidents.IncidentAction(incidents.action_kind(action), incident_id, until=when, owner=owner or None,
                                            text=(reason if action == "silence" else text) or None)
        with transaction(sessions) as session:  # its own: a refusal rolls back and becomes the answer
            result = incidents.perform(session, request_, staff.name, now, alerting=Alerts(config.alerts),
                                       brands=[b.name for b in config.brands], via="web")
        changed, message = result.changed, result.message
    except incidents.ActionError as exc:
        changed, message, status = False, f"Not done: {exc}", action_error(exc).status
    if wants_json:
        return JSONResponse({"changed": changed, "message": message}, status_code=status)
    request.session["flash"] = message
    return RedirectResponse(f"/incidents/{incident_id}", status_code=303)


@router.get("/sources", response_class=HTMLResponse)
def sources_page(staff: PageManager, request: Request, session: DbSession, config: AppConfig, now: Now) -> Response:
    sources = sources_with_status(session, config.sources(), now, connector_mode)
    return render(request, "sources.html", staff, sources=sources)


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(staff: PageAdmin, request: Request, session: DbSession) -> Response:
    users = accounts.list_users(session)
    tokens = accounts.token_counts(session)
    return render(request, "admin_users.html", staff, users=users, token_counts=tokens, roles=accounts.ROLES)


def _account_act(request: Request, sessions: Sessions, now: datetime,
                 action: Callable[[Session, datetime], tuple[str, str]]) -> Response:
    """Run an account change in its own transaction; `action` returns the flash message and where to go next."""
    target = "/admin/users"
    try:
        with transaction(sessions) as session:
            request.session["flash"], target = action(session, now)
    except accounts.AccountError as exc:
        request.session["flash"] = f"Not done: {exc}"
    return RedirectResponse(target, status_code=303)


@router.post("/admin/users")
def add_user(staff: PageAdmin, request: Request, sessions: Sessions, now: Now,
             csrf_token: Annotated[str, Form()] = "", name: Annotated[str, Form(max_length=200)] = "",
             role: Annotated[str, Form(max_length=20)] = "agent",
             password: Annotated[str, Form(max_length=1000)] = "") -> Response:
    verify_csrf(request, csrf_token)

    def act(session: Session, now: datetime) -> tuple[str, str]:
        user = accounts.create_user(session, name, role, password or None, now)
        login = "" if password else " It has no password: API tokens only."
        return f"Added {user.name} ({user.role}).{login}", "/admin/users"

    return _account_act(request, sessions, now, act)


@router.post("/admin/users/update")
def change_user(staff: PageAdmin, request: Request, sessions: Sessions, now: Now,
                role: Annotated[str, Form(max_length=20)],
                status: Annotated[Literal["active", "deactivated"], Form()],
                csrf_token: Annotated[str, Form()] = "", name: Annotated[str, Form(max_length=200)] = "",
                slack_user_id: Annotated[str, Form(max_length=50)] = "",
                password: Annotated[str, Form(max_length=1000)] = "") -> Response:
    """The whole row's form: role, Slack id (empty clears it), status, and a new password when one is typed.

    Role and status have no defaults, so a form that leaves one out is refused rather than read as a change."""
    verify_csrf(request, csrf_token)

    def act(session: Session, now: datetime) -> tuple[str, str]:
        changed = accounts.update_user(session, name, now, actor=staff.name, role=role, active=status == "active",
                                       slack_user_id=slack_user_id, password=password or accounts.KEEP)
        user = changed.user
        message = f"Saved {user.name}." + (" New password set." if password else "")
        if changed.released:
            message += f" Posts {', '.join(map(str, changed.released))} went back to the queue."
        still_admin = user.active and accounts.has_role(user.role, "admin")
        return message, "/admin/users" if user.name != staff.name or still_admin else "/queue"

    return _account_act(request, sessions, now, act)
