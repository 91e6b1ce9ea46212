"""RSS and Atom feeds (news, Google Alerts), fetched with httpx and parsed with feedparser.

Feeds have no server-side cursor: each fetch returns the latest entries. The cursor keeps, per
feed, the ETag / Last-Modified for conditional GET (a 304 costs nothing) and the ids of recently
seen entries so a poll yields only new ones. One broken feed does not stop the others.
"""
from __future__ import annotations

import asyncio
import logging
from calendar import timegm
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import feedparser
import httpx
from pydantic import Field

from monitor.core.posts import FetchedPost, Page
from connectors.http import HttpParams, MalformedPayload, SourceError, request
from connectors.normal import InvalidItem, bounded_id, html_to_text, require_dict, short_text
from connectors.paging import PartialFailures, collect, dump_state, load_state

log = logging.getLogger("flarewatch.connectors")


def real_link(link: str | None) -> str | None:
    """Google Alerts links redirect through google.com/url?url=<real>; return the real one."""
    if not link:
        return None
    parts = urlsplit(link)
    if parts.netloc.endswith("google.com") and parts.path == "/url":
        target = parse_qs(parts.query).get("url")
        if target and target[0].startswith(("http://", "https://")):
            return target[0]
    return link


def _text(value: Any) -> str:
    return html_to_text(value, images=False) if isinstance(value, str) else ""


def _time(entry: dict[str, Any]) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = entry.get(key)
        if value is not None:
            try:
                return datetime.fromtimestamp(timegm(value), tz=timezone.utc)
            except (TypeError, ValueError, OverflowError, OSError):
                continue
    return None


def normalise_entry(
    source: str, entry: Any, fallback_time: datetime, feed_lang: str | None = None
) -> FetchedPost | None:
    """A feedparser entry as a post. Entries without a date get the fetch time."""
    entry = require_dict(entry, "entry")
    link = real_link(entry.get("link") if isinstance(entry.get("link"), str) else None)
    title, summary = _text(entry.get("title")), _text(entry.get("summary"))
    if not summary and isinstance(entry.get("content"), list) and entry["content"]:
        first = entry["content"][0]
        summary = _text(first.get("value")) if isinstance(first, dict) else ""
    text = "\n".join(t for t in (title, summary) if t)
    if not text:
        return None
    raw_id = entry.get("id") if isinstance(entry.get("id"), str) and entry.get("id") else link
    if not raw_id:
        raise InvalidItem("entry has neither id nor link")
    author = entry.get("author") if isinstance(entry.get("author"), str) else ""
    if not author.strip():  # Google Alerts leaves it empty: the publisher's domain is the author
        author = urlsplit(link).netloc if link else ""
    created = _time(entry) or fallback_time
    raw = {k: entry.get(k) for k in ("id", "title", "link", "author", "published", "updated", "summary")
           if isinstance(entry.get(k), str)}
    return FetchedPost(
        source=source,
        external_id=bounded_id(raw_id, "id"),
        text=text,
        created_at=created,
        author=(author.strip() or "unknown")[:300],
        url=link,
        lang=short_text(feed_lang, 20),
        raw=raw,
    )


class RssParams(HttpParams):
    urls: list[str] = Field(min_length=1, description="feed URLs (RSS, Atom, Google Alerts)")
    max_pages: int = Field(default=100, ge=1, description="feeds fetched per run at most")
    remember: int = Field(default=200, ge=10, description="entry ids remembered per feed to skip re-sends")


class RssFeeds:
    kind: ClassVar[str] = "rss"
    mode: ClassVar[str] = "poll"
    params_model: ClassVar[type[RssParams]] = RssParams

    def __init__(self, *, source_name: str, query_terms: list[str], params: RssParams) -> None:
        self.source = source_name
        self.params = params

    async def pages(self, client: httpx.AsyncClient, cursor: str | None) -> AsyncIterator[Page]:
        state = load_state(cursor, self.source)
        failures = PartialFailures()
        for url in self.params.urls[: self.params.max_pages]:
            try:
                page = await self._fetch(client, url, state)
            except SourceError as exc:
                failures.add(url, exc, self.source)
                continue
            if page is not None:
                yield page
        failures.raise_if_any()

    async def _fetch(self, client: httpx.AsyncClient, url: str, state: dict[str, Any]) -> Page | None:
        kept = state.get(url)
        feed_state: dict[str, Any] = kept if isinstance(kept, dict) else {}
        headers = {"Accept": "application/atom+xml, application/rss+xml, application/xml;q=0.9, */*;q=0.5"}
        if isinstance(feed_state.get("etag"), str):
            headers["If-None-Match"] = feed_state["etag"]
        if isinstance(feed_state.get("modified"), str):
            headers["If-Modified-Since"] = feed_state["modified"]
        response = await request(client, "GET", url, source=self.source, params=self.params, headers=headers,
                                 ok=(200, 304), follow_redirects=True)
        if response.status_code == 304:
            return None
        # XML parsing of a big feed is CPU work: off the event loop the web server shares.
        parsed = await asyncio.to_thread(feedparser.parse, response.content, response_headers={
            "content-location": str(response.url), "content-type": response.headers.get("content-type", ""),
        })
        if parsed.get("bozo") and not parsed.entries:
            raise MalformedPayload(f"{url}: not a feed: {parsed.get('bozo_exception')!r}"[:300])
        if parsed.get("bozo"):
            log.warning("feed has errors; using what parsed", extra={
                "source": self.source, "url": url, "error": repr(parsed.get("bozo_exception"))[:200]})
        now = datetime.now(timezone.utc)
        lang = parsed.feed.get("language") if isinstance(parsed.feed.get("language"), str) else None
        seen = [s for s in feed_state.get("seen", []) if isinstance(s, str)]
        known = set(seen)
        fresh = [e for e in parsed.entries if _entry_key(e) not in known]
        posts, errors = collect(fresh, lambda e: normalise_entry(self.source, e, now, lang), self.source)
        seen += [key for key in (_entry_key(e) for e in fresh) if key]
        new_state: dict[str, list[str] | str] = {"seen": seen[-self.params.remember:]}
        if response.headers.get("etag"):
            new_state["etag"] = response.headers["etag"]
        if response.headers.get("last-modified"):
            new_state["modified"] = response.headers["last-modified"]
        state[url] = new_state
        return Page(posts, dump_state(state), errors)


def _entry_key(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return None
    value = entry.get("id") or entry.get("link")
    return value if isinstance(value, str) else None
