"""One error shape for the whole API: `{"error": {"code": ..., "message": ...}}`.

The errors routes raise and the body they become; `monitor/web/handlers.py` installs the handlers
that answer with it (pages get the same errors as HTML, and a missing login becomes a redirect).
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from monitor.core.incidents import ActionError, ActionForbidden, IncidentNotFound

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


def action_error(exc: ActionError) -> ApiError:
    """An incident action's refusal as its HTTP error, the same on every route: 404 no such incident,
    403 the role (or a deactivated user), 422 the request itself."""
    status = 404 if isinstance(exc, IncidentNotFound) else 403 if isinstance(exc, ActionForbidden) else 422
    return ApiError(status, str(exc))


class LoginRequired(Exception):
    """A page needs a logged-in user; answered with a redirect to the login page."""


def error_body(code: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"error": error}
