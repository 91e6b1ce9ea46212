"""Reddit: keyword search for posts (and optionally new comments of chosen subreddits).

With `client_id`/`client_secret` it uses an app-only OAuth token on oauth.reddit.com (100
requests/min); without them the logged-out `.json` endpoints (10/min, increasingly blocked).
The token is fetched once per process and renewed before it expires or on a 401.

Cursor, per feed: the newest fullname stored and its time. A poll asks for `before=<fullname>`,
which returns the items just newer than it, so every page can advance the cursor. If that anchor
was deleted Reddit answers empty forever; then page 1 is re-read and filtered by time instead.
"""
from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import httpx
from pydantic import Field, SecretStr

from monitor.core.posts import FetchedPost, Page
from connectors.http import HttpError, HttpParams, MalformedPayload, SourceError, read_json, expect_type, request
from connectors.normal import (
    InvalidItem, as_count, bounded_id, get, parse_time, require_dict, text_field, tidy,
)
from connectors.paging import PartialFailures, collect, dump_state, load_state

log = logging.getLogger("flarewatch.connectors")

_GONE = {"[deleted]", "[removed]"}


def normalise_thing(source: str, thing: Any) -> FetchedPost | None:
    """A listing child (t3 post or t1 comment) as a post; None for deleted or removed ones."""
    thing = require_dict(thing, "listing child")
    kind = thing.get("kind")
    data = require_dict(thing.get("data"), "data")
    if kind not in ("t3", "t1"):
        raise InvalidItem(f"unexpected kind {kind!r}")
    name = bounded_id(data.get("name") or (f"{kind}_{data['id']}" if isinstance(data.get("id"), str) else None),
                      "name")
    if kind == "t3":
        title, body = text_field(data, "title") or "", text_field(data, "selftext") or ""
        if body in _GONE:
            body = ""
        text = tidy(f"{title}\n{body}")
        replies = as_count(data.get("num_comments"))
    else:
        comment = text_field(data, "body")
        if comment is None:
            raise InvalidItem("comment body missing")
        text = "" if comment in _GONE else tidy(comment)
        replies = 0
    author = text_field(data, "author")
    if not text or author in _GONE or data.get("removed_by_category"):
        return None
    if not author:
        raise InvalidItem("author missing")
    path = text_field(data, "permalink")
    score = data.get("score")
    return FetchedPost(
        source=source,
        external_id=name,
        text=text,
        created_at=parse_time(data.get("created_utc"), "created_utc"),
        author=author[:300],
        url=f"https://www.reddit.com{path}" if path and path.startswith("/") else text_field(data, "url"),
        likes=as_count(data.get("ups")),
        reposts=as_count(data.get("num_crossposts")),
        replies=replies,
        score=score if isinstance(score, int) and not isinstance(score, bool) and abs(score) < 2**62 else None,
        raw=thing,
    )


class RedditParams(HttpParams):
    client_id: str = Field(default="", description="OAuth app id; empty = logged-out JSON (throttled)")
    client_secret: SecretStr = SecretStr("")
    subreddit: str | None = Field(default=None, description="restrict search to one subreddit")
    comment_subreddits: list[str] = Field(default_factory=list, description="also read new comments here")
    time_filter: str = Field(default="day", pattern="^(hour|day|week|month|year|all)$")
    limit: int = Field(default=100, ge=1, le=100)
    oauth_url: str = "https://oauth.reddit.com"
    public_url: str = "https://www.reddit.com"
    token_url: str = "https://www.reddit.com/api/v1/access_token"
    user_agent: str = "server:flarewatch:0.1 (social-media monitoring)"


# App tokens live for the process, keyed by (token endpoint, client id).
_TOKENS: dict[tuple[str, str], tuple[str, float]] = {}


class Reddit:
    kind: ClassVar[str] = "reddit"
    mode: ClassVar[str] = "poll"
    params_model: ClassVar[type[RedditParams]] = RedditParams

    def __init__(self, *, source_name: str, query_terms: list[str], params: RedditParams) -> None:
        self.source = source_name
        self.params = params
        terms = [t.strip() for t in query_terms if t.strip()]
        self.query = " OR ".join(f'"{t}"' if " " in t else t for t in terms)

    async def _token(self, client: httpx.AsyncClient, renew: bool = False) -> str | None:
        p = self.params
        if not p.client_id:
            return None
        key = (p.token_url, p.client_id)
        cached = _TOKENS.get(key)
        if cached and not renew and cached[1] > time.monotonic():
            return cached[0]
        response = await request(
            client, "POST", p.token_url, source=self.source, params=p,
            data={"grant_type": "client_credentials"}, auth=(p.client_id, p.client_secret.get_secret_value()),
        )
        body = await read_json(response)
        token = get(body, "access_token")
        if not isinstance(token, str) or not token:
            raise MalformedPayload(f"token endpoint answered without access_token: {str(body)[:200]}")
        lifetime = as_count(get(body, "expires_in")) or 3600
        _TOKENS[key] = (token, time.monotonic() + lifetime * 0.9)
        return token

    def _feeds(self) -> list[tuple[str, str, dict[str, Any]]]:
        p = self.params
        search_path = f"/r/{p.subreddit}/search" if p.subreddit else "/search"
        search = {"q": self.query, "sort": "new", "t": p.time_filter, "type": "link"}
        if p.subreddit:
            search["restrict_sr"] = "1"
        feeds = [("search", search_path, search)] if self.query else []
        feeds += [(f"comments:{sub}", f"/r/{sub}/comments", {}) for sub in p.comment_subreddits]
        return feeds

    async def _listing(self, client: httpx.AsyncClient, path: str, query: dict[str, Any]) -> list[Any]:
        p = self.params
        query = {**query, "limit": p.limit, "raw_json": 1}
        for attempt in range(2):
            token = await self._token(client, renew=attempt == 1)
            if token:
                url, headers = f"{p.oauth_url}{path}", {"Authorization": f"bearer {token}"}
            else:
                url, headers = f"{p.public_url}{path}.json", {}
            try:
                body = await read_json(await request(client, "GET", url, source=self.source, params=p, query=query,
                                                 headers=headers))
            except HttpError as exc:
                if exc.status == 401 and token and attempt == 0:
                    continue  # token expired early: renew once
                raise
            if get(body, "kind") != "Listing":
                raise MalformedPayload(f"expected a Listing from {url}, got {str(body)[:120]!r}")
            return expect_type(get(body, "data", "children"), list, "Listing.data.children")
        raise AssertionError("unreachable")  # pragma: no cover

    async def pages(self, client: httpx.AsyncClient, cursor: str | None) -> AsyncIterator[Page]:
        state = load_state(cursor, self.source)
        budget = self.params.max_pages
        failures = PartialFailures()
        await self._token(client)  # once: bad credentials fail the poll once, not once per feed
        for key, path, query in self._feeds():
            if budget <= 0:
                break
            try:
                while budget > 0:
                    budget -= 1
                    anchor = state.get(key) if isinstance(state.get(key), dict) else None
                    children = await self._listing(client, path, {**query, **({"before": anchor["name"]}
                                                                               if anchor else {})})
                    if anchor and not children and budget > 0:
                        # Nothing newer than the anchor, or the anchor is gone: check page 1 by time.
                        budget -= 1
                        children = [c for c in await self._listing(client, path, query)
                                    if _created(c) is not None and _created(c) > anchor.get("created", 0)]
                        if children:
                            log.info("reddit anchor gone; resumed by time", extra={"source": self.source, "feed": key})
                    posts, errors = collect(children, lambda c: normalise_thing(self.source, c), self.source)
                    newest = _newest(children)
                    if newest is not None and (anchor is None or newest[0] >= anchor.get("created", 0)):
                        state[key] = {"name": newest[1], "created": newest[0]}
                    yield Page(posts, dump_state(state), errors)
                    if not children or anchor is None:
                        break  # caught up, or a first poll (which starts from now)
            except SourceError as exc:
                failures.add(key, exc, self.source)
        failures.raise_if_any()


def _newest(children: list[Any]) -> tuple[float, str] | None:
    """(time, fullname) of the newest child; listings are newest first, so ties go to the first."""
    best: tuple[float, str] | None = None
    for child in children:
        created, name = _created(child), get(child, "data", "name")
        if created is not None and isinstance(name, str) and (best is None or created > best[0]):
            best = (created, name)
    return best


def _created(child: Any) -> float | None:
    value = get(child, "data", "created_utc")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
