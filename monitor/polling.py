"""Polling one configured source: the single entry point the daemon's per-source job calls.

Loads the source's cursor, lets its connector page from there, stores each page (posts and the
page's cursor) in its own transaction, and records success or failure on the source row. A
source's failure is logged and recorded, never raised, so one broken source cannot stop another.

The result tells the scheduler what the source said (Home Assistant's update coordinator is the
model): `retry_after` when it asked us to wait longer than a run may sleep (the daemon does not
poll it before then), `auth_failed` on 401/403 (the daemon pauses it: new credentials need a
restart anyway). Logging follows the source's state, not each run: a warning when it starts
failing, info when it recovers, debug for the failures in between.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import dataclass

import httpx
from sqlalchemy.orm import Session, sessionmaker

from monitor.core.posts import Page
from connectors.http import AuthFailed, RateLimited, SourceError
from monitor.core.brands import BrandMatcher
from connectors.registry import build_connector
from monitor.core.clock import Clock
from monitor.metrics import count_poll
from monitor.config import BrandConfig, SourceConfig
from monitor.core.ingest import ensure_source, store_page
from monitor.core.leases import LeaseLost
from monitor.core.storage.db import transaction
from monitor.core.storage.schema import Source

log = logging.getLogger("flarewatch.connectors")

MAX_ERROR_TEXT = 2_000


@dataclass
class PollResult:
    source: str
    ok: bool = True
    pages: int = 0
    stored: int = 0
    duplicates: int = 0
    already_seen: int = 0
    off_topic: int = 0
    rejected: int = 0
    error: str | None = None
    rate_limited: bool = False
    retry_after: float | None = None  # seconds the source asked us to leave it alone
    auth_failed: bool = False  # 401/403: polling again cannot help until the credentials change

    @property
    def fetched(self) -> int:
        return self.stored + self.duplicates


async def poll_source(
    sessions: sessionmaker[Session],
    brand: BrandConfig,
    source: SourceConfig,
    client: httpx.AsyncClient,
    clock: Clock,
    fence: Callable[[Session], bool] | None = None,
) -> PollResult:
    """Fetch what is new for one source and store it; see the module docstring.

    `fence(session)` runs in each page's transaction before anything is written (replicas pass
    their lease's fence, `monitor.core.leases`); when it answers False, or the stored cursor is no
    longer the one this poll continued from, another replica has taken the source over: the poll
    stops without writing, so a cursor never goes backwards.
    """
    result = PollResult(source.name)
    cursor = await asyncio.to_thread(_begin, sessions, brand, source, clock)
    expected = [cursor]
    try:
        matcher = BrandMatcher(brand.terms, brand.exclude)
        connector = build_connector(source.kind, source.name, brand.terms, source.params)
        async with aclosing(connector.pages(client, cursor)) as pages:  # type: ignore[type-var]  # async generators
            async for page in pages:
                # Database work runs off the event loop: the web server shares it.
                await asyncio.to_thread(_store, sessions, brand, source, matcher, page, clock, result, fence, expected)
    except LeaseLost as exc:
        log.info("source taken over by another replica; poll stopped", extra={"source": source.name,
                                                                               "reason": str(exc)})
        return result
    except Exception as exc:  # noqa: BLE001  (any failure of one source is recorded, not raised)
        result.ok = False
        result.rate_limited = isinstance(exc, RateLimited)
        result.retry_after = exc.wait_seconds if isinstance(exc, RateLimited) else None
        result.auth_failed = isinstance(exc, AuthFailed)
        result.error = _describe(exc)
        before = await asyncio.to_thread(_finish, sessions, source.name, clock, result.error)
        known = isinstance(exc, SourceError)
        log.log(
            logging.WARNING if before == 0 else logging.DEBUG,
            "source poll failed" if before == 0 else "source still failing",
            exc_info=not known and before == 0,
            extra={"source": source.name, "brand": brand.name, "kind": source.kind, "error": result.error,
                   "pages": result.pages, "stored": result.stored, "failures": before + 1,
                   "retry_after_s": result.retry_after},
        )
        count_poll(source.name, result.fetched, result.stored, ok=False)
        return result
    before = await asyncio.to_thread(_finish, sessions, source.name, clock, None)
    count_poll(source.name, result.fetched, result.stored, ok=True)
    if before:
        log.info("source recovered", extra={"source": source.name, "brand": brand.name, "kind": source.kind,
                                            "failed_runs": before})
    log.info(
        "source polled",
        extra={"source": source.name, "brand": brand.name, "kind": source.kind, "pages": result.pages,
               "stored": result.stored, "duplicates": result.duplicates, "rejected": result.rejected},
    )
    return result


def _begin(sessions: sessionmaker[Session], brand: BrandConfig, source: SourceConfig, clock: Clock) -> str | None:
    """Create the source row if needed, note the attempt, and return the stored cursor."""
    with transaction(sessions) as session:
        row = ensure_source(session, source.name, brand.name, source.kind)
        row.last_attempt_at = clock.now()
        return row.cursor


def _finish(sessions: sessionmaker[Session], name: str, clock: Clock, error: str | None) -> int:
    """Record the run's outcome; return the consecutive failures before it (0: it was healthy)."""
    with transaction(sessions) as session:
        row = session.get(Source, name)
        if row is None:
            return 0
        before = row.consecutive_failures or 0
        if error is None:
            row.last_success_at = clock.now()
            row.consecutive_failures = 0
        else:
            row.last_error_at = clock.now()
            row.last_error = error[:MAX_ERROR_TEXT]
            row.consecutive_failures = before + 1
        return before


def _store(
    sessions: sessionmaker[Session], brand: BrandConfig, source: SourceConfig, matcher: BrandMatcher,
    page: Page, clock: Clock, result: PollResult, fence: Callable[[Session], bool] | None = None,
    expected: list[str | None] | None = None,
) -> None:
    with transaction(sessions) as session:
        if fence is not None and not fence(session):
            raise LeaseLost("the source's lease is held by another replica")
        row = session.get(Source, source.name)
        if row is None:  # removed while we were fetching (e.g. by a reset); recreate it
            row = ensure_source(session, source.name, brand.name, source.kind)
        elif expected is not None and row.cursor != expected[0]:
            raise LeaseLost(f"the cursor moved to {row.cursor!r} since this poll read {expected[0]!r}")
        stored = store_page(session, row, brand.name, matcher, page, clock.now())
        if stored.stored + stored.duplicates:
            row.last_post_at = clock.now()
        if expected is not None and page.cursor is not None:
            expected[0] = page.cursor
    result.pages += 1
    result.stored += stored.stored
    result.duplicates += stored.duplicates
    result.already_seen += stored.already_seen
    result.off_topic += stored.off_topic
    result.rejected += page.errors


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SourceError):
        return f"{type(exc).__name__}: {exc}"
    return f"unexpected {type(exc).__name__}: {exc}"
