"""X (Twitter) API v2 recent search with an app-only bearer token.

Cursor: the newest tweet id stored (`since_id`). A poll follows `next_token` back through older
pages, so only its last page moves the cursor (to the first page's `meta.newest_id`); a crash in
between re-reads, and the database key drops what was already stored. Retweets are excluded in the
query: their text is a truncated copy and their metrics are the original's.
"""
from __future__ import annotations

import html
import logging
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import httpx
from pydantic import Field, SecretStr

from monitor.core.posts import FetchedPost, Page
from connectors.http import HttpError, HttpParams, read_json, expect_type, request
from connectors.normal import (
    InvalidItem, as_count, bounded_id, get, optional_count, parse_time, require_dict, short_text, text_field, tidy,
)
from connectors.paging import collect

log = logging.getLogger("flarewatch.connectors")

TWEET_FIELDS = "created_at,lang,public_metrics,author_id,conversation_id,referenced_tweets,entities,note_tweet"
USER_FIELDS = "username,name,public_metrics,verified"
_UNDETERMINED = {"und", "qme", "qam", "zxx", "qct", "qht", "qst"}


def normalise_tweet(source: str, tweet: Any, users: dict[str, Any]) -> FetchedPost | None:
    """A tweet (with its page's `includes.users` by id) as a post; None for retweets."""
    tweet = require_dict(tweet, "tweet")
    tweet_id = bounded_id(tweet.get("id"), "id")
    if not tweet_id.isdigit():
        raise InvalidItem(f"tweet id {tweet_id[:40]!r} is not numeric")
    refs = tweet.get("referenced_tweets")
    if isinstance(refs, list) and any(get(r, "type") == "retweeted" for r in refs):
        return None
    text = text_field(tweet, "note_tweet", "text") or text_field(tweet, "text")
    if text is None:
        raise InvalidItem("text missing")
    text = tidy(html.unescape(text))  # v2 escapes &, < and > in text
    if not text:
        return None
    user = users.get(tweet.get("author_id")) if isinstance(tweet.get("author_id"), str) else None
    username = text_field(user, "username")
    author = username or text_field(tweet, "author_id") or "unknown"
    metrics = tweet.get("public_metrics") if isinstance(tweet.get("public_metrics"), dict) else {}
    lang = text_field(tweet, "lang")
    return FetchedPost(
        source=source,
        external_id=tweet_id,
        text=text,
        created_at=parse_time(tweet.get("created_at")),
        author=author[:300],
        url=f"https://x.com/{username}/status/{tweet_id}" if username else f"https://x.com/i/web/status/{tweet_id}",
        author_followers=optional_count(get(user, "public_metrics", "followers_count")),
        lang=None if lang in _UNDETERMINED else short_text(lang, 20),
        likes=as_count(metrics.get("like_count")),
        reposts=as_count(metrics.get("retweet_count")) + as_count(metrics.get("quote_count")),
        replies=as_count(metrics.get("reply_count")),
        raw=tweet,
    )


class XParams(HttpParams):
    bearer_token: SecretStr = Field(description='app-only bearer token, e.g. "${X_BEARER_TOKEN}"')
    base_url: str = "https://api.x.com"
    max_results: int = Field(default=100, ge=10, le=100)
    max_pages: int = Field(default=5, ge=1)
    lang: str | None = Field(default=None, description="adds lang:<code> to the query")
    extra_query: str = Field(default="", description="appended to the query, e.g. -is:reply")


def _usage_capped(response: httpx.Response) -> bool:
    return b"UsageCapExceeded" in response.content or b"usage-capped" in response.content


class XSearch:
    kind: ClassVar[str] = "x"
    mode: ClassVar[str] = "poll"
    params_model: ClassVar[type[XParams]] = XParams

    def __init__(self, *, source_name: str, query_terms: list[str], params: XParams) -> None:
        self.source = source_name
        self.params = params
        terms = [t.strip() for t in query_terms if t.strip()]
        ors = " OR ".join(f'"{t}"' if " " in t else t for t in terms)
        parts = [f"({ors})" if len(terms) > 1 else ors, "-is:retweet"]
        if params.lang:
            parts.append(f"lang:{params.lang}")
        if params.extra_query:
            parts.append(params.extra_query)
        self.query = " ".join(parts)

    async def pages(self, client: httpx.AsyncClient, cursor: str | None) -> AsyncIterator[Page]:
        p = self.params
        since_id = cursor if cursor and cursor.isdigit() else None
        newest: str | None = None
        token: str | None = None
        for number in range(1, p.max_pages + 1):
            query: dict[str, Any] = {
                "query": self.query, "max_results": p.max_results, "tweet.fields": TWEET_FIELDS,
                "expansions": "author_id", "user.fields": USER_FIELDS,
            }
            if since_id:
                query["since_id"] = since_id
            if token:
                query["next_token"] = token
            try:
                response = await request(
                    client, "GET", f"{p.base_url.rstrip('/')}/2/tweets/search/recent", source=self.source,
                    params=p, query=query, headers={"Authorization": f"Bearer {p.bearer_token.get_secret_value()}"},
                    no_retry=_usage_capped,
                )
            except HttpError as exc:
                if exc.status != 400 or "since_id" not in exc.body or since_id is None or number > 1:
                    raise
                # Recent search only reaches back 7 days; after a longer outage start again from now.
                log.warning("stored since_id is too old for recent search; starting from now",
                            extra={"source": self.source, "since_id": since_id})
                async for page in self.pages(client, None):
                    yield page
                return
            body = expect_type(await read_json(response), dict, "search response")
            if isinstance(body.get("errors"), list) and body["errors"]:  # partial errors ride along with data
                log.info("x partial errors", extra={"source": self.source, "count": len(body["errors"])})
            tweets = body.get("data", [])
            tweets = expect_type(tweets, list, "data")
            users = {u["id"]: u for u in get(body, "includes", "users") or [] if isinstance(get(u, "id"), str)}
            posts, errors = collect(tweets, lambda t: normalise_tweet(self.source, t, users), self.source)  # noqa: B023
            page_newest = get(body, "meta", "newest_id")
            if number == 1 and isinstance(page_newest, str) and page_newest.isdigit():
                newest = page_newest
            token = get(body, "meta", "next_token")
            more = isinstance(token, str) and bool(token) and number < p.max_pages
            if more and since_id is not None:
                yield Page(posts, None, errors)
                continue
            if isinstance(token, str) and token and since_id is not None:
                log.warning("page budget spent before catching up; older tweets of this poll are skipped",
                            extra={"source": self.source, "max_pages": p.max_pages})
            yield Page(posts, newest or since_id, errors)
            return
