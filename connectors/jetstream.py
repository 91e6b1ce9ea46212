"""Bluesky in real time: the Jetstream firehose (websocket, no auth), filtered by the brand's terms.

Each run connects with `wantedCollections=app.bsky.feed.post` and the stored `time_us` cursor
(rewound a few seconds, since delivery is at-least-once), reads for a bounded time or number of
events, and yields a page every `page_events` events. Matching is client-side: the server cannot
filter by keyword. Authors are DIDs (a handle lookup per post would cost more than it is worth).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any, ClassVar
from urllib.parse import urlencode

import httpx
import websockets
from pydantic import Field
from websockets.asyncio.client import connect

from connectors.base import SourceParams
from monitor.core.posts import FetchedPost, Page
from connectors.bluesky import lookup_profiles, permalink, with_profiles
from connectors.http import MalformedPayload, NetworkError
from monitor.core.brands import BrandMatcher
from connectors.normal import (
    InvalidItem, bounded_id, clean_post, parse_time, require_dict, short_text, text_field, tidy,
)
from monitor.core.boundary import Rejected, decode_json, parse_one

log = logging.getLogger("flarewatch.connectors")

POST = "app.bsky.feed.post"


def normalise_jetstream_event(source: str, event: Any) -> FetchedPost | None:
    """A v1 commit creating a post, as a post; None for every other event (likes, deletes, identity)."""
    event = require_dict(event, "event")
    if event.get("kind") != "commit":
        return None
    commit = require_dict(event.get("commit"), "commit")
    if commit.get("collection") != POST or commit.get("operation") != "create":
        return None
    did, rkey = text_field(event, "did"), text_field(commit, "rkey")
    if not did or not rkey:
        raise InvalidItem("commit without did or rkey")
    record = require_dict(commit.get("record"), "commit.record")
    text = text_field(record, "text")
    if text is None:
        raise InvalidItem("commit.record.text missing")
    text = tidy(text)
    if not text:
        return None
    try:
        created = parse_time(record.get("createdAt"), "record.createdAt")
    except InvalidItem:
        created = parse_time(_seconds(event.get("time_us")), "time_us")
    seen = event.get("time_us")
    if isinstance(seen, int) and not isinstance(seen, bool) and created.timestamp() > seen / 1e6 + 300:
        created = parse_time(seen / 1e6, "time_us")  # client clocks in the future must not skew buckets
    uri = f"at://{did}/{POST}/{rkey}"
    langs = record.get("langs")
    lang = langs[0] if isinstance(langs, list) and langs and isinstance(langs[0], str) else None
    return FetchedPost(
        source=source, external_id=bounded_id(uri, "uri"), text=text, created_at=created, author=did[:300],
        url=permalink(did, None, uri), lang=short_text(lang, 20), raw=event,
    )


def _seconds(time_us: Any) -> Any:
    return time_us / 1e6 if isinstance(time_us, int) and not isinstance(time_us, bool) else None


class JetstreamParams(SourceParams):
    url: str = "wss://jetstream2.us-east.bsky.network/subscribe"
    max_pages: int = Field(default=20, ge=1)
    page_events: int = Field(default=2000, ge=1, description="events read per stored page")
    max_seconds: float = Field(default=20, gt=0, description="how long one run listens")
    rewind_seconds: float = Field(default=5, ge=0, description="replay this much before the cursor on reconnect")
    open_timeout_seconds: float = Field(default=15, gt=0)
    profiles_url: str | None = Field(
        default="https://public.api.bsky.app", description="AppView for author handles and followers; none = skip"
    )


class Jetstream:
    kind: ClassVar[str] = "jetstream"
    mode: ClassVar[str] = "stream"
    params_model: ClassVar[type[JetstreamParams]] = JetstreamParams

    def __init__(self, *, source_name: str, query_terms: list[str], params: JetstreamParams) -> None:
        self.source = source_name
        self.params = params
        self.matcher = BrandMatcher(query_terms)

    def _url(self, cursor: str | None) -> str:
        query: list[tuple[str, str]] = [("wantedCollections", POST)]
        if cursor and cursor.isdigit():
            query.append(("cursor", str(max(0, int(cursor) - int(self.params.rewind_seconds * 1_000_000)))))
        elif cursor:
            log.warning("ignoring unreadable cursor", extra={"source": self.source, "cursor": cursor[:100]})
        return f"{self.params.url}?{urlencode(query)}"

    async def pages(self, client: httpx.AsyncClient, cursor: str | None) -> AsyncIterator[Page]:
        p = self.params
        newest = int(cursor) if cursor and cursor.isdigit() else None
        deadline = time.monotonic() + p.max_seconds
        posts: list[FetchedPost] = []
        errors = events = pages = 0
        try:
            async with connect(self._url(cursor), open_timeout=p.open_timeout_seconds, close_timeout=2,
                               max_size=2**22) as socket:
                while pages < p.max_pages:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    try:
                        message = await asyncio.wait_for(socket.recv(), timeout=remaining)
                    except (TimeoutError, websockets.ConnectionClosedOK):
                        break
                    events += 1
                    parsed = parse_one(self._event, message)
                    if isinstance(parsed, Rejected):  # bad JSON or a malformed commit
                        errors += 1
                        log.warning("skipping malformed event", extra={"source": self.source, "error": parsed.reason})
                        parsed = (None, None)
                    stamp, post = parsed
                    if stamp is not None:
                        newest = stamp if newest is None else max(newest, stamp)
                    if post is not None and self.matcher.matches(post.text):
                        posts.append(post)
                    if events % p.page_events == 0:
                        pages += 1
                        yield await self._page(client, posts, newest, errors)
                        posts, errors = [], 0
        except (TimeoutError, OSError, websockets.InvalidHandshake, websockets.ConnectionClosedError) as exc:
            if posts or errors:
                yield await self._page(client, posts, newest, errors)
            raise NetworkError(f"jetstream {p.url}: {exc!r}") from None
        except websockets.InvalidURI as exc:
            raise MalformedPayload(f"jetstream url {p.url!r}: {exc}") from None
        if posts or errors or (newest is not None and str(newest) != cursor):
            yield await self._page(client, posts, newest, errors)

    def _event(self, message: str | bytes) -> tuple[int | None, FetchedPost | None]:
        """One event: its time_us (the cursor) and its post, if it is one (inside the item boundary)."""
        event = decode_json(message)
        stamp = event.get("time_us") if isinstance(event, dict) else None
        post = normalise_jetstream_event(self.source, event)
        return (stamp if isinstance(stamp, int) and not isinstance(stamp, bool) else None,
                clean_post(post) if post is not None else None)

    async def _page(self, client: httpx.AsyncClient, posts: list[FetchedPost], newest: int | None,
                    errors: int) -> Page:
        if posts and self.params.profiles_url:
            dids = [post.author for post in posts]
            posts = with_profiles(posts, await lookup_profiles(client, self.params.profiles_url, dids, self.source))
        return Page(posts, str(newest) if newest is not None else None, errors)
