"""Server-side browser sessions: the cookie carries only a random id, the session lives in the database.

`request.session` works as with Starlette's SessionMiddleware, but its contents are a `web_sessions`
row keyed by the SHA-256 of the cookie's id (a database dump yields no usable cookie). So ending a
session is deleting its row: logout does, a password change or deactivation deletes all of that
user's rows (`monitor.accounts`), and every replica on the database sees it at once. A copied
cookie opens nothing after that.

The id changes whenever the session's user changes (at login), so an id planted before login is
worthless after it. Sessions without a user (a login form's CSRF token) live an hour; a login lives
`web.session_hours` from the moment it was made, however active.
"""
from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitor.core.storage.db import STORAGE_ERRORS, transaction
from monitor.core.storage.schema import User, WebSession
from monitor.web.errors import STORAGE_RETRY_AFTER, error_body

COOKIE = "flarewatch_session"
ANONYMOUS_LIFETIME = timedelta(hours=1)


async def _unavailable(scope: Scope, receive: Receive, send: Send) -> None:
    body = error_body("unavailable", f"storage is unavailable for the moment; retry in {STORAGE_RETRY_AFTER} s")
    await JSONResponse(body, 503, {"Retry-After": str(STORAGE_RETRY_AFTER)})(scope, receive, send)


def id_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class _Loaded:
    key: str
    user_id: int | None
    data: dict[str, Any]


class ServerSessionMiddleware:
    def __init__(self, app: ASGIApp, sessions: sessionmaker[Session], now: Callable[[], datetime],
                 lifetime: timedelta, https_only: bool = False) -> None:
        self.app, self.sessions, self.now, self.lifetime = app, sessions, now, lifetime
        self.flags = "; httponly; samesite=lax" + ("; secure" if https_only else "")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        token = HTTPConnection(scope).cookies.get(COOKIE)
        try:
            loaded = await run_in_threadpool(self._load, token) if token and len(token) < 200 else None
        except STORAGE_ERRORS:
            await _unavailable(scope, receive, send)
            return
        scope["session"] = dict(loaded.data) if loaded else {}
        before = dict(scope["session"])
        replaced = False

        async def send_wrapper(message: Message) -> None:
            nonlocal replaced
            if replaced:  # the app's own answer was replaced by a 503: drop the rest of it
                return
            if message["type"] == "http.response.start":
                data = scope["session"]
                if data != before or (token and loaded is None):
                    try:
                        cookie = await run_in_threadpool(self._save, loaded, data)
                    except STORAGE_ERRORS:  # the session could not be kept: say so, as the routes do
                        replaced = True
                        await _unavailable(scope, receive, send)
                        return
                    headers = MutableHeaders(scope=message)
                    if cookie is None:  # ended (or never known): tell the browser to drop it
                        headers.append("set-cookie", f"{COOKIE}=; path=/; max-age=0{self.flags}")
                    elif cookie:
                        max_age = int((self.lifetime if data.get("user") else ANONYMOUS_LIFETIME).total_seconds())
                        headers.append("set-cookie", f"{COOKIE}={cookie}; path=/; max-age={max_age}{self.flags}")
            await send(message)

        await self.app(scope, receive, send_wrapper)

    def _load(self, token: str) -> _Loaded | None:
        key = id_hash(token)
        with self.sessions() as session:
            row = session.get(WebSession, key)
            if row is None or row.expires_at <= self.now():
                return None
            return _Loaded(key, row.user_id, dict(row.data or {}))

    def _save(self, loaded: _Loaded | None, data: dict[str, Any]) -> str | None:
        """Store `data`; returns the new cookie value, "" for no change of cookie, None to clear it."""
        now = self.now()
        with transaction(self.sessions) as session:
            user_id = None
            if isinstance(data.get("user"), str):
                user_id = session.scalar(select(User.id).where(User.name == data["user"]))
            if loaded is not None and data and user_id == loaded.user_id:
                row = session.get(WebSession, loaded.key)
                if row is not None:
                    row.data = dict(data)
                    return ""
            if loaded is not None:
                session.execute(delete(WebSession).where(WebSession.id_hash == loaded.key))
            if not data:
                return None
            session.execute(delete(WebSession).where(WebSession.expires_at <= now))  # indexed; keeps the table small
            token = secrets.token_urlsafe(32)
            session.add(WebSession(id_hash=id_hash(token), user_id=user_id, data=dict(data), created_at=now,
                                   expires_at=now + (self.lifetime if user_id is not None else ANONYMOUS_LIFETIME)))
            return token

