"""The web app's error handlers: FastAPI's own (HTTP errors, request validation) are replaced so that
bad input always gets the one error body (`monitor.web.errors`) and a 4xx. Pages get the same errors
as HTML, and a missing login becomes a redirect.
"""
from __future__ import annotations

import logging
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitor.core.queue import ClaimConflict, NotFlagged, QueueError
from monitor.core.storage.db import STORAGE_ERRORS
from monitor.web.auth import page_user, session_csrf
from monitor.web.errors import STORAGE_RETRY_AFTER, ApiError, LoginRequired, error_body
from monitor.web.state import web_state

log = logging.getLogger("flarewatch.web")


def _wants_html(request: Request) -> bool:
    path = request.url.path
    return not (path.startswith("/api") or path in ("/healthz", "/metrics") or path.startswith("/slack"))


def _respond(request: Request, error: ApiError, headers: dict[str, str] | None = None) -> Response:
    # A 413 is JSON on pages too: the body limit answers declared lengths itself, before any page exists.
    if error.status != 413 and _wants_html(request):
        templates = web_state(request).templates
        user = page_user(request) if error.status != 401 else None  # a logged-in person keeps the nav bar
        return templates.TemplateResponse(
            request, "error.html", {"status": error.status, "message": error.message, "user": user,
                                    "csrf": session_csrf(request) if user else ""},
            status_code=error.status, headers=headers,
        )
    return JSONResponse(error_body(error.code, error.message, error.details), status_code=error.status,
                        headers=headers)


def _too_large() -> JSONResponse:
    return JSONResponse(error_body("too_large", "the request body is too large"), status_code=413,
                        headers={"X-Content-Type-Options": "nosniff"})


class BodyLimit:
    """Every request body's size limit, counted while it streams in (Starlette's limiter), answering
    413 with the app's one error body.

    Starlette's limiter writes its own plain-text 413 when the declared Content-Length alone is over
    the limit (it replaces whatever the app answered) or when the limit trips outside a route. Installed
    as the outermost middleware, this is the limiter every request meets first; a route's
    `max_body_size` then only sets the limit for its path, so every 413 passes through here.
    """

    def __init__(self, app: ASGIApp, max_body_size: int) -> None:
        self.app = RequestBodyLimitMiddleware(app, max_body_size=max_body_size)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        replaced = False

        async def send_json_413(message: Message) -> None:
            nonlocal replaced
            if message["type"] == "http.response.start" and message["status"] == 413:
                content_type = dict(message.get("headers", [])).get(b"content-type", b"")
                replaced = not content_type.startswith(b"application/json")
            if not replaced:
                await send(message)
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                await _too_large()(scope, receive, send)

        await self.app(scope, receive, send_json_413)


def install_error_handlers(app: FastAPI) -> None:
    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return _respond(request, exc, headers)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        return _respond(request, ApiError(exc.status_code, message), getattr(exc, "headers", None))

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        details = [
            {"field": ".".join(str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path", "form")),
             "in": str(e["loc"][0]) if e.get("loc") else "", "message": str(e.get("msg", "invalid"))}
            for e in exc.errors()
        ]
        summary = "; ".join(f"{d['field'] or d['in']}: {d['message']}" for d in details) or "invalid request"
        status = 422 if not _wants_html(request) else 400
        return _respond(request, ApiError(status, summary, "invalid_request", details))

    async def queue_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, QueueError)
        status = 404 if isinstance(exc, NotFlagged) else 409 if isinstance(exc, ClaimConflict) else 400
        return _respond(request, ApiError(status, str(exc), exc.code))

    async def login_required(request: Request, exc: Exception) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    async def storage_unavailable(request: Request, exc: Exception) -> Response:
        # A locked or full database is a moment, not a bug: senders should retry, not give up.
        log.warning("storage unavailable in %s %s: %s", request.method, request.url.path,
                    str(exc).splitlines()[0][:300])
        return _respond(request, ApiError(503, "storage is unavailable for the moment (database locked or full); "
                                               f"retry in {STORAGE_RETRY_AFTER} s"),
                        {"Retry-After": str(STORAGE_RETRY_AFTER)})

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error in %s %s", request.method, request.url.path)
        return JSONResponse(error_body("internal", "internal error (logged)"), status_code=500)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(QueueError, queue_error)
    app.add_exception_handler(LoginRequired, login_required)
    for storage_error in STORAGE_ERRORS:
        app.add_exception_handler(storage_error, storage_unavailable)
    app.add_exception_handler(Exception, unexpected)
