"""Mastodon: hashtag timelines on any number of instances, plus status search where a token is given.

Every instance is its own API. The cursor keeps the highest status id seen per (instance, feed);
polling asks for `min_id=<that id>`, which returns the statuses immediately newer, so each page can
advance the cursor and a crash between pages loses nothing. A first poll only reads the newest page.
Posts are keyed by their global ActivityPub `uri`, so one post seen on two instances is stored once.
"""
from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
from pydantic import Field, SecretStr

from monitor.core.posts import FetchedPost, Page
from connectors.http import HttpParams, SourceError, read_json, expect_type, request
from connectors.normal import (
    InvalidItem, as_count, bounded_id, get, html_to_text, optional_count, parse_time, require_dict, short_text,
    text_field,
)
from connectors.paging import PartialFailures, collect, dump_state, load_state

_VISIBLE = ("public", "unlisted", None)


def normalise_status(source: str, status: Any) -> FetchedPost | None:
    """A Status entity as a post; None for boosts, non-public posts and empty ones."""
    status = require_dict(status, "status")
    if status.get("reblog"):
        return None  # a boost: the original arrives (or not) on its own
    if status.get("visibility") not in _VISIBLE:
        return None
    external = bounded_id(status.get("uri") or status.get("id"), "uri")
    content = status.get("content")
    if content is not None and not isinstance(content, str):
        raise InvalidItem(f"content has type {type(content).__name__}")
    text = html_to_text(content or "")
    warning = text_field(status, "spoiler_text")
    if warning and warning.strip():
        text = f"{warning.strip()}\n{text}".strip()
    if not text:
        return None
    account = require_dict(status.get("account"), "account")
    author = text_field(account, "acct") or text_field(account, "username")
    if not author:
        raise InvalidItem("account.acct missing")
    url = text_field(status, "url") or text_field(status, "uri")
    return FetchedPost(
        source=source,
        external_id=external,
        text=text,
        created_at=parse_time(status.get("created_at")),
        author=author[:300],
        url=url,
        author_followers=optional_count(account.get("followers_count")),
        lang=short_text(text_field(status, "language"), 20),
        likes=as_count(status.get("favourites_count")),
        reposts=as_count(status.get("reblogs_count")) + as_count(status.get("quotes_count")),
        replies=as_count(status.get("replies_count")),
        raw=status,
    )


def tag_for(term: str) -> str | None:
    """The hashtag a brand term would be written as: "Acme Corp" → "acmecorp"."""
    tag = re.sub(r"[^\w]", "", term.lstrip("#"), flags=re.UNICODE).lower()
    return tag or None


def _id_key(value: str) -> tuple[int, str]:
    """Mastodon ids are decimal strings; compare them as numbers."""
    return (len(value), value) if value.isdigit() else (0, value)


class MastodonParams(HttpParams):
    instances: list[str] = Field(default_factory=lambda: ["https://mastodon.social"], min_length=1)
    hashtags: list[str] = Field(default_factory=list, description="tags without '#'; default: one per brand term")
    access_tokens: dict[str, SecretStr] = Field(
        default_factory=dict, description="instance URL -> user token; enables status search there"
    )
    search: bool = Field(default=True, description="also run /api/v2/search on instances with a token")
    limit: int = Field(default=40, ge=1, le=40)
    local_only: bool = False


class Mastodon:
    kind: ClassVar[str] = "mastodon"
    mode: ClassVar[str] = "poll"
    params_model: ClassVar[type[MastodonParams]] = MastodonParams

    def __init__(self, *, source_name: str, query_terms: list[str], params: MastodonParams) -> None:
        self.source = source_name
        self.params = params
        self.terms = [t.strip() for t in query_terms if t.strip()]
        tags = params.hashtags or [t for t in (tag_for(term) for term in self.terms) if t]
        self.tags = list(dict.fromkeys(t.lstrip("#").lower() for t in tags))

    def _feeds(self) -> list[tuple[str, str, str]]:
        """(cursor key, instance, feed) for every timeline and search this source reads."""
        feeds = []
        for instance in self.params.instances:
            base = instance.rstrip("/")
            feeds += [(f"{base}|tag:{tag}", base, f"tag:{tag}") for tag in self.tags]
            token = self.params.access_tokens.get(instance) or self.params.access_tokens.get(base)
            if token and self.params.search:
                feeds += [(f"{base}|search:{term}", base, f"search:{term}") for term in self.terms]
        return feeds

    async def pages(self, client: httpx.AsyncClient, cursor: str | None) -> AsyncIterator[Page]:
        state = load_state(cursor, self.source)
        budget = self.params.max_pages
        failures = PartialFailures()
        for key, base, feed in self._feeds():
            if budget <= 0:
                break
            try:
                while budget > 0:
                    budget -= 1
                    statuses = await self._fetch(client, base, feed, state.get(key))
                    posts, errors = collect(statuses, lambda s: normalise_status(self.source, s), self.source)
                    ids = [i for i in (get(s, "id") for s in statuses) if isinstance(i, str)]
                    first_poll = key not in state
                    if ids:
                        newest = max(ids + ([state[key]] if key in state else []), key=_id_key)
                        state[key] = newest
                    yield Page(posts, dump_state(state), errors)
                    if not ids or first_poll:
                        break  # caught up (or a first poll, which starts from now)
            except SourceError as exc:
                failures.add(f"{base} {feed}", exc, self.source)
        failures.raise_if_any()

    async def _fetch(self, client: httpx.AsyncClient, base: str, feed: str, min_id: str | None) -> list[Any]:
        p = self.params
        token = p.access_tokens.get(base) or p.access_tokens.get(base + "/")
        headers = {"Authorization": f"Bearer {token.get_secret_value()}"} if token else {}
        query: dict[str, Any] = {"limit": p.limit}
        if min_id:
            query["min_id"] = min_id
        kind, _, name = feed.partition(":")
        if kind == "tag":
            if p.local_only:
                query["local"] = "true"
            url = f"{base}/api/v1/timelines/tag/{quote(name, safe='')}"
            body = await read_json(await request(client, "GET", url, source=self.source, params=p, query=query,
                                             headers=headers))
            return expect_type(body, list, "tag timeline")
        query.update(q=name, type="statuses", resolve="false")
        body = await read_json(await request(client, "GET", f"{base}/api/v2/search", source=self.source, params=p,
                                         query=query, headers=headers))
        return expect_type(get(body, "statuses") if isinstance(body, dict) else body, list, "search.statuses")
