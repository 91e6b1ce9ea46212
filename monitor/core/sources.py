"""Sources with their status: the one read behind the sources page, `GET /api/sources`, `/healthz`,
the metrics and `flarewatch sources status` (issue 16: one function per concept).

A source's status says whether it is doing its job:

- ok;
- failing: its last run failed; needs_credentials: refused with 401/403 (`AuthFailed`, as
  `monitor.polling` records it), paused until a restart with new ones;
- stale: no success, or no new post, for a while. A push source has no runs and is judged by when a
  post last arrived; any source with `stale_after_minutes` is also stale when it brings no new post
  for that long, its polls succeeding or not;
- never: configured and enabled, nothing run or received yet;
- disabled: configured with `enabled = false`; unconfigured: a stored source no longer in the config.

The core reads the configuration through the `ConfiguredSource` protocol (`monitor.config.SourceConfig`
satisfies it), so it imports nothing above itself.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.core.storage.schema import Source

PUSH_STALE_AFTER = timedelta(hours=1)  # a push source without stale_after_minutes: silent this long is stale
MIN_STALE_POLL = timedelta(minutes=5)  # a polled source is stale after 3 intervals without success, at least this


class SourceState(StrEnum):
    OK = "ok"
    FAILING = "failing"
    NEEDS_CREDENTIALS = "needs_credentials"
    STALE = "stale"
    NEVER = "never"
    DISABLED = "disabled"
    UNCONFIGURED = "unconfigured"


BAD_STATES = frozenset({SourceState.FAILING, SourceState.NEEDS_CREDENTIALS, SourceState.STALE})
FAILED_STATES = frozenset({SourceState.FAILING, SourceState.NEEDS_CREDENTIALS})  # the last run failed


class Named(Protocol):
    @property
    def name(self) -> str: ...


class ConfiguredSource(Protocol):
    """What the status needs of a configured source (`monitor.config.SourceConfig`)."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def mode(self) -> str: ...  # poll | push | stream
    @property
    def enabled(self) -> bool: ...
    @property
    def interval_seconds(self) -> float: ...
    @property
    def stale_after_minutes(self) -> float | None: ...


@dataclass(frozen=True)
class SourceExpectation:
    """What an enabled source should be doing, to judge its row against."""

    mode: str  # poll | push | stream
    interval_seconds: float
    stale_after: timedelta | None  # no new post for this long: stale

    @classmethod
    def of(cls, source: ConfiguredSource) -> SourceExpectation:
        minutes = source.stale_after_minutes
        stale_after = timedelta(minutes=minutes) if minutes else (PUSH_STALE_AFTER if source.mode == "push" else None)
        return cls(source.mode, source.interval_seconds, stale_after)


def needs_credentials(source: Source) -> bool:
    """The last run was refused for its credentials (`AuthFailed`, as `monitor.polling` records it)."""
    return source.consecutive_failures > 0 and (source.last_error or "").startswith("AuthFailed:")


def source_status(source: Source, expected: SourceExpectation, now: datetime) -> SourceState:
    """The status of an enabled source's row (the module docstring says what each means)."""
    if expected.mode == "push":
        if source.last_post_at is None:
            return SourceState.NEVER
        stale_after = expected.stale_after or PUSH_STALE_AFTER
        return SourceState.STALE if now - source.last_post_at > stale_after else SourceState.OK
    if source.consecutive_failures > 0:
        return SourceState.NEEDS_CREDENTIALS if needs_credentials(source) else SourceState.FAILING
    if source.last_success_at is None:
        return SourceState.NEVER
    if now - source.last_success_at > max(3 * timedelta(seconds=expected.interval_seconds), MIN_STALE_POLL):
        return SourceState.STALE
    if expected.stale_after is not None and now - (source.last_post_at or source.last_success_at) > expected.stale_after:
        return SourceState.STALE
    return SourceState.OK


@dataclass(frozen=True)
class SourceWithStatus:
    name: str
    brand: str
    kind: str
    mode: str  # poll | push | stream
    status: SourceState
    configured: bool
    enabled: bool  # configured and enabled
    row: Source | None  # None: configured, never run (nothing stored about it yet)


def sources_with_status(session: Session, configured: Iterable[tuple[Named, ConfiguredSource]], now: datetime,
                        mode_of: Callable[[str], str]) -> list[SourceWithStatus]:
    """Every configured source and every stored one no longer configured, with its status, by brand
    and name. `configured` is `Config.sources()`; `mode_of(kind)` gives an unconfigured row's mode."""
    rows = {row.name: row for row in session.scalars(select(Source))}
    out: list[SourceWithStatus] = []
    for brand, source in configured:
        row = rows.pop(source.name, None)
        if not source.enabled:
            status = SourceState.DISABLED
        elif row is None:
            status = SourceState.NEVER
        else:
            status = source_status(row, SourceExpectation.of(source), now)
        out.append(SourceWithStatus(source.name, brand.name, source.kind, source.mode, status, True, source.enabled, row))
    for row in rows.values():
        out.append(SourceWithStatus(row.name, row.brand, row.kind, mode_of(row.kind), SourceState.UNCONFIGURED,
                                    False, False, row))
    return sorted(out, key=lambda s: (s.brand, s.name))
