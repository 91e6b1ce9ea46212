"""One error shape for the whole API: `{"error": {"code": ..., "message": ...}}`.

FastAPI's own handlers (HTTP errors, request validation) are replaced so that bad input always gets
this body and a 4xx. Pages get the same errors as HTML, and a missing login becomes a redirect.
"""
from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from monitor.core.queue import ClaimConflict, NotFlagged, QueueError
from monitor.core.storage.db import STORAGE_ERRORS

log = logging.getLogger("flarewatch.web")
STORAGE_RETRY_AFTER = 10  # seconds; long enough for a lock to clear, short enough not to lose a sender

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
          409: "conflict", 413: "too_large", 415: "unsupported_media_type", 422: "invalid_request",
          429: "too_many_requests", 503: "unavailable"}


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: list[dict[str, Any]] | None = None


class ErrorOut(BaseModel):
    """The body of every 4xx and 5xx answer from the API."""

    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": text}
    for status, text in ((401, "no or unknown token"), (403, "the token's role is too low"),
                         (404, "no such thing"), (409, "someone else holds the post, or it is closed"),
                         (422, "bad input"))
}


class ApiError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None,
                 details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status, self.message = status, message
        self.code = code or _CODES.get(status, "error")
        self.details = details


class LoginRequired(Exception):
    """A page needs a logged-in user; answered with a redirect to the login page."""


def error_body(code: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"error": error}


def _wants_html(request: Request) -> bool:
    path = request.url.path
    return not (path.startswith("/api") or path in ("/healthz", "/metrics") or path.startswith("/slack"))


def _respond(request: Request, error: ApiError, headers: dict[str, str] | None = None) -> Response:
    if _wants_html(request):
        from monitor.web.auth import page_user, session_csrf  # auth raises these errors: imported here

        templates = request.app.state.templates
        user = page_user(request) if error.status != 401 else None  # a logged-in person keeps the nav bar
        return templates.TemplateResponse(
            request, "error.html", {"status": error.status, "message": error.message, "user": user,
                                    "csrf": session_csrf(request) if user else ""},
            status_code=error.status, headers=headers,
        )
    return JSONResponse(error_body(error.code, error.message, error.details), status_code=error.status,
                        headers=headers)


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
