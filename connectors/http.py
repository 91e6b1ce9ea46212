"""The one way connectors talk HTTP: timeouts, retries of transient failures, rate-limit waits.

Every connector calls `request()` (and `read_json()` for JSON bodies). Network errors, 408 and
5xx are retried with exponential backoff and jitter; 429 waits as long as the server asks
(`monitor.core.http_outcome`: the one status classifier and Retry-After parser, shared with the
alert senders). A wait longer than `max_wait_seconds` is not slept through: the run stops with
`RateLimited(wait_seconds=...)`, cursor untouched, and the scheduler leaves the source alone that
long. 401/403 stop the run with `AuthFailed`, and the scheduler pauses the source.

Every response is streamed: a body larger than `max_response_bytes` (declared or as it arrives)
fails the request with `ResponseTooLarge` before it is buffered, and each attempt has a total
`deadline_seconds` (httpx's `timeout_seconds` is per read, so a server trickling one byte a second
would otherwise hold a source forever). Big bodies are decoded in a worker thread (`read_json`),
so a 100 MB page never stalls the web server that shares the event loop.

Tests replace `connectors.http.sleep` (and `connectors.http.wall_time`) to keep waits instant.
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from pydantic import Field
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_exponential_jitter

from connectors.base import SourceParams
from monitor.core.boundary import MalformedJson, decode_json
from monitor.core.http_outcome import Outcome, classify, retry_after

log = logging.getLogger("flarewatch.connectors")

# Replaced in tests so that retry waits take no time; looked up at call time.
sleep = asyncio.sleep
wall_time = time.time

DEFAULT_USER_AGENT = "flarewatch/0.1 (social-media monitoring; +https://github.com/flarewatch/flarewatch)"


class SourceError(Exception):
    """A source failed this run; the daemon records it on the source row and tries next interval."""


class RateLimited(SourceError):
    def __init__(self, message: str, wait_seconds: float | None = None) -> None:
        super().__init__(message)
        self.wait_seconds = wait_seconds


class HttpError(SourceError):
    """A non-retryable HTTP status (or a retryable one that kept failing)."""

    def __init__(self, message: str, status: int, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class AuthFailed(HttpError):
    """401 or 403: the credentials are wrong or lack access; retrying cannot help until they change."""


class NetworkError(SourceError):
    pass


class DeadlineExceeded(NetworkError):
    """One attempt took longer than `deadline_seconds` in all (connect, headers and body)."""


class ResponseTooLarge(SourceError):
    """The body is over `max_response_bytes`; retrying would not make it smaller."""


class MalformedPayload(SourceError):
    """A page that is not what the API documents: bad JSON, an HTML error page, a wrong envelope."""


class HttpParams(SourceParams):
    """Request settings every HTTP connector shares (all optional in the config)."""

    max_pages: int = Field(default=10, ge=1, le=10_000, description="pages fetched per run at most")
    timeout_seconds: float = Field(default=20.0, gt=0, description="per network operation (connect, each read)")
    deadline_seconds: float = Field(default=60.0, gt=0, description="one attempt in all, body included")
    max_response_bytes: int = Field(default=16 * 1024 * 1024, ge=1024, description="largest body read")
    retries: int = Field(default=3, ge=0, le=20, description="retries of network errors, 408, 429 and 5xx")
    backoff_seconds: float = Field(default=1.0, ge=0, description="first retry wait; doubles each retry")
    max_backoff_seconds: float = Field(default=60.0, ge=0)
    max_wait_seconds: float = Field(default=120.0, ge=0, description="longest rate-limit wait honoured in a run")
    user_agent: str = DEFAULT_USER_AGENT


@dataclass
class _Transient(Exception):
    """A response worth retrying; `hint` is how long the server asked us to wait."""

    response: httpx.Response
    hint: float | None


def _wait_strategy(params: HttpParams) -> Any:
    backoff = wait_exponential_jitter(
        multiplier=params.backoff_seconds, max=params.max_backoff_seconds, jitter=params.backoff_seconds
    )

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Transient) and exc.hint is not None:
            return exc.hint + random.uniform(0, max(params.backoff_seconds, 0.0))
        return float(backoff(state))

    return wait


async def _sleep(seconds: float) -> None:
    await sleep(seconds)


def _snippet(response: httpx.Response) -> str:
    text = response.text[:300] if response.content else ""
    return " ".join(text.split())


async def request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    source: str,
    params: HttpParams,
    query: dict[str, Any] | list[tuple[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    ok: tuple[int, ...] = (200,),
    no_retry: Callable[[httpx.Response], bool] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """Send one request with retries; return a response whose status is in `ok`.

    `no_retry(response)` marks a 429 that waiting will not fix (X's monthly usage cap).

    Raises `RateLimited`, `AuthFailed` (401, 403), `HttpError` (other statuses) or `NetworkError`;
    all are `SourceError`.
    """
    sent_headers = {"User-Agent": params.user_agent, **(headers or {})}
    retrying = AsyncRetrying(
        stop=stop_after_attempt(params.retries + 1),
        wait=_wait_strategy(params),
        retry=retry_if_exception_type((_Transient, httpx.TransportError)),
        sleep=_sleep,
        reraise=True,
        before_sleep=lambda state: log.warning(
            "retrying request",
            extra={"source": source, "url": url, "attempt": state.attempt_number,
                   "wait_s": round(state.upcoming_sleep, 2), "reason": _reason(state)},
        ),
    )
    try:
        async for attempt in retrying:
            with attempt:
                response = await _send(client, method, url, params, query=query, headers=sent_headers, **kwargs)
                status = response.status_code
                if status in ok:
                    return response
                outcome = classify(status)
                if outcome is Outcome.RATE_LIMITED and no_retry is not None and no_retry(response):
                    raise RateLimited(f"HTTP 429 from {url}: {_snippet(response)}", retry_after(
                        response.headers, wall_time()))
                if outcome.retryable:
                    hint = retry_after(response.headers, wall_time())
                    if hint is not None and hint > params.max_wait_seconds:
                        raise RateLimited(
                            f"HTTP {status} from {url}: server asks to wait {hint:.0f}s "
                            f"(more than max_wait_seconds={params.max_wait_seconds:g}); will retry next interval",
                            hint,
                        )
                    raise _Transient(response, hint)
                failure = AuthFailed if outcome is Outcome.AUTH_FAILED else HttpError
                raise failure(f"HTTP {status} from {url}: {_snippet(response)}", status, response.text[:2000])
    except _Transient as exc:
        status = exc.response.status_code
        if status == 429:
            raise RateLimited(f"HTTP 429 from {url} after {params.retries + 1} attempts", exc.hint) from None
        raise HttpError(
            f"HTTP {status} from {url} after {params.retries + 1} attempts: {_snippet(exc.response)}",
            status, exc.response.text[:2000],
        ) from None
    except httpx.TransportError as exc:
        raise NetworkError(f"network error for {url} after {params.retries + 1} attempts: {exc!r}") from None
    raise AssertionError("unreachable")  # pragma: no cover


_BODY_HEADERS = {"content-encoding", "content-length", "transfer-encoding"}


async def _send(client: httpx.AsyncClient, method: str, url: str, params: HttpParams, *,
                query: Any, headers: dict[str, str], follow_redirects: bool | None = None,
                auth: Any = None, **kwargs: Any) -> httpx.Response:
    """One attempt: streamed, at most `max_response_bytes` (decoded), within `deadline_seconds` in all."""
    limit = params.max_response_bytes
    request = client.build_request(method, url, params=query, headers=headers, timeout=params.timeout_seconds,
                                   **kwargs)
    try:
        async with asyncio.timeout(params.deadline_seconds):
            extra: dict[str, Any] = {} if follow_redirects is None else {"follow_redirects": follow_redirects}
            if auth is not None:
                extra["auth"] = auth
            response = await client.send(request, stream=True, **extra)
            try:
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise ResponseTooLarge(f"{url}: the response declares {int(declared):,} bytes, "
                                           f"more than max_response_bytes={limit:,}")
                chunks, size = [], 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise ResponseTooLarge(f"{url}: the response is larger than max_response_bytes={limit:,}")
                    chunks.append(chunk)
            finally:
                await response.aclose()
    except TimeoutError:
        raise DeadlineExceeded(f"{url}: no complete answer within deadline_seconds={params.deadline_seconds:g}") \
            from None
    # The body is already decoded: keep the headers that describe the resource, not the transfer.
    kept = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _BODY_HEADERS]
    return httpx.Response(response.status_code, headers=kept, content=b"".join(chunks),
                          request=response.request, extensions={"http_version": response.http_version.encode()})


def _reason(state: RetryCallState) -> str:
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, _Transient):
        return f"HTTP {exc.response.status_code}"
    return repr(exc)


OFF_LOOP_BYTES = 64 * 1024  # bodies above this are decoded in a worker thread


async def read_json(response: httpx.Response) -> Any:
    """The response body as JSON, or `MalformedPayload` (HTML error page, truncated or empty body)."""
    body = response.content
    if body.lstrip()[:1] == b"<":  # judged by the body: some servers label JSON text/html and vice versa
        raise MalformedPayload(f"expected JSON from {response.request.url}, got HTML: {_snippet(response)[:120]}")
    try:
        if len(body) > OFF_LOOP_BYTES:
            return await asyncio.to_thread(decode_json, body)
        return decode_json(body)
    except MalformedJson as exc:
        raise MalformedPayload(f"invalid JSON from {response.request.url} ({len(body)} bytes): {exc}") from None


T = TypeVar("T")


def expect_type(value: object, kind: type[T], what: str) -> T:
    """Check an envelope field's type; a wrong one makes the whole page malformed."""
    if not isinstance(value, kind):
        raise MalformedPayload(f"{what}: expected {kind.__name__}, got {type(value).__name__}")
    return value
