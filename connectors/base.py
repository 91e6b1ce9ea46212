"""The interface the daemon polls: a connector turns one platform's API into `Page`s of
`FetchedPost` (both in `monitor.core.posts`), and validates its own `params` table.
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from typing import ClassVar, Protocol

import httpx
from monitor.core.posts import Page
from monitor.core.settings import Strict


class SourceParams(Strict):
    """Base for each connector's `params` table; unknown keys are configuration errors."""


SOURCE_MODES = ("poll", "push", "stream")


class Connector(Protocol):
    kind: ClassVar[str]
    params_model: ClassVar[type[SourceParams]]
    # How posts arrive: "poll" (the daemon asks on an interval), "stream" (polled too, each run reads a live
    # feed for a while), "push" (the platform posts to /api/ingest: no poll job; health is when a post last came).
    mode: ClassVar[str]

    def __init__(self, *, source_name: str, query_terms: list[str], params: SourceParams) -> None:
        """What `connectors.registry.build_connector` passes every connector (params: its own `params_model`)."""
        ...

    def pages(self, client: httpx.AsyncClient, cursor: str | None) -> AsyncIterator[Page]:
        """Yield pages newer than `cursor` until caught up (bounded per run)."""
        ...
