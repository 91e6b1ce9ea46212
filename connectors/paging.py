"""What every connector does around its API calls: cursor state, per-item errors, partial failures."""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from monitor.core.posts import FetchedPost
from connectors.http import SourceError
from connectors.normal import clean_post
from monitor.core.boundary import parse_each

log = logging.getLogger("flarewatch.connectors")


def load_state(cursor: str | None, source: str) -> dict[str, Any]:
    """A connector's cursor as a JSON object; an unreadable one starts afresh (and says so)."""
    if not cursor:
        return {}
    try:
        state = json.loads(cursor)
    except ValueError:
        state = None
    if not isinstance(state, dict):
        log.warning("ignoring unreadable cursor", extra={"source": source, "cursor": cursor[:200]})
        return {}
    return state


def dump_state(state: dict[str, Any]) -> str:
    return json.dumps(state, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def collect(
    items: Iterable[Any], normalise: Callable[[Any], FetchedPost | None], source: str
) -> tuple[list[FetchedPost], int]:
    """Normalise a page's items: malformed ones (whatever the normaliser raised) are logged, counted and skipped."""

    def parse(item: Any) -> FetchedPost | None:
        post = normalise(item)
        return clean_post(post) if post is not None else None

    parsed = parse_each(items, parse)
    for rejected in parsed.rejected:
        log.warning("skipping malformed item",
                    extra={"source": source, "item": rejected.position, "error": rejected.reason})
    return parsed.items, len(parsed.rejected)


class PartialFailures:
    """Errors from independent parts of one source (feeds, instances, terms).

    One failing feed must not starve the others: each part's error is kept, the other parts still
    run, and the run ends with one `SourceError` naming every failed part.
    """

    def __init__(self) -> None:
        self.errors: list[tuple[str, SourceError]] = []

    def add(self, part: str, error: SourceError, source: str) -> None:
        log.info("source part failed", extra={"source": source, "part": part, "error": str(error)})
        self.errors.append((part, error))

    def raise_if_any(self) -> None:
        if not self.errors:
            return
        if len(self.errors) == 1:
            raise self.errors[0][1]  # its message already names the URL
        message = "; ".join(f"{part}: {error}" for part, error in self.errors)
        raise SourceError(message)
