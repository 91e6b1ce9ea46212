"""`POST /api/ingest/{source}`: posts pushed to us by a `webhook` source, with a token.

The body is a JSON array of posts, parsed by `connectors.webhook.parse_pushed`. Good items are
stored even when others are bad; the answer lists every rejected item and why (207 when some were
rejected, 422 when all were). The source's own `params.token` wins over `web.ingest_token`.
"""
from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from monitor.core.brands import BrandMatcher
from connectors.webhook import parse_pushed
from monitor.core.ingest import IngestResult, count_on_source, ensure_source, store_posts
from monitor.core.storage.db import transaction
from monitor.metrics import count_poll
from monitor.config import Config
from monitor.web.deps import AppClock, AppConfig, Sessions
from monitor.web.errors import ERROR_RESPONSES, ApiError, ErrorOut
from monitor.web.views import IngestOut

MAX_BODY = 5 * 1024 * 1024
_bearer = HTTPBearer(auto_error=False, scheme_name="IngestToken", description="the configured web.ingest_token")
router = APIRouter(prefix="/api", responses=ERROR_RESPONSES)


def _check_token(config: Config, credentials: HTTPAuthorizationCredentials | None, own: str | None) -> None:
    """The source's own token when it has one, else the shared web.ingest_token."""
    shared = config.web.ingest_token
    expected = own or (shared.get_secret_value() if shared is not None else None)
    if not expected:
        raise ApiError(404, "the ingest webhook is disabled (set web.ingest_token or the source's params.token)")
    if credentials is None or not hmac.compare_digest(credentials.credentials.encode(), expected.encode()):
        raise ApiError(401, "a valid ingest token is required (Authorization: Bearer ...)")


@router.post("/ingest/{source}", tags=["ingest"], summary="Push posts for a configured webhook source",
             response_model=IngestOut, max_body_size=MAX_BODY,  # enforced as the body streams in, chunked too
             responses={207: {"model": IngestOut, "description": "some posts were rejected"},
                        413: {"model": ErrorOut, "description": f"the body is over {MAX_BODY} bytes"}})
async def ingest(request: Request, source: Annotated[str, Path(max_length=100, pattern=r"^[a-z0-9][a-z0-9_.-]*$")],
                 config: AppConfig, sessions: Sessions, clock: AppClock,
                 credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> JSONResponse:
    configured = {s.name: (b, s) for b, s in config.sources() if s.mode == "push"}
    if source not in configured:
        _check_token(config, credentials, None)  # no probing for source names without a token
        raise ApiError(404, f"no webhook source named {source!r} is configured")
    brand, source_config = configured[source]
    own = source_config.params.get("token")
    _check_token(config, credentials, own.get_secret_value() if own is not None else None)
    raw = await request.body()  # at most MAX_BODY: the route's limit answers 413 past it
    # Decoding and validating up to MAX_BODY is CPU work: in a worker thread, off the event loop.
    posts, errors = await run_in_threadpool(parse_pushed, source, raw)  # fields come back storable
    if errors and errors[0].startswith("body:"):
        raise ApiError(400, errors[0])
    matcher = BrandMatcher(brand.terms, brand.exclude)

    def store() -> IngestResult:
        with transaction(sessions) as session:
            row = ensure_source(session, source, brand.name, source_config.kind)
            now = clock.now()
            result = store_posts(session, brand.name, matcher, posts, now)
            count_on_source(session, source, result.stored + result.duplicates, len(errors))
            row.last_attempt_at = row.last_success_at = now
            row.consecutive_failures = 0
            if result.stored + result.duplicates:
                row.last_post_at = now  # what "stale" judges a push source by
            return result

    result = await run_in_threadpool(store)  # also when every item was bad: the source counts rejections
    count_poll(source, len(posts), result.stored, ok=True)
    if errors and not posts:
        raise ApiError(422, f"all {len(errors)} posts were rejected; nothing was stored", "invalid_items",
                       [{"message": e} for e in errors])
    body = IngestOut(stored=result.stored, duplicates=result.duplicates, already_seen=result.already_seen,
                     off_topic=result.off_topic, rejected=errors)
    return JSONResponse(body.model_dump(), status_code=207 if errors else 200)
