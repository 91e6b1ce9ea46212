"""Bluesky keyword search: `app.bsky.feed.searchPosts`, newest first, through the account's PDS.

Search needs a logged-in session since 2025 (anonymous calls get 403), so give `identifier` and an
app password. The session is created once per process and refreshed on `ExpiredToken`, never per
poll: createSession is limited to 30 per 5 minutes and locks the account when tripped.

There is no since-id: the cursor keeps, per term, the newest `indexedAt` stored; each poll asks for
`since = newest - overlap` and pages back until caught up. Re-fetched posts are dropped by the
database's (source, external id) key.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any, ClassVar

import httpx
from pydantic import Field, SecretStr

from monitor.core.posts import FetchedPost, Page
from connectors.http import HttpError, HttpParams, MalformedPayload, SourceError, read_json, expect_type, request
from connectors.normal import (
    InvalidItem, bounded_id, get, optional_count, as_count, parse_time, require_dict, short_text, text_field, tidy,
)
from connectors.paging import PartialFailures, collect, dump_state, load_state

log = logging.getLogger("flarewatch.connectors")

_HIDDEN_LABEL = "!no-unauthenticated"  # the author asked not to be shown to logged-out viewers


def permalink(did: str, handle: str | None, uri: str) -> str:
    rkey = uri.rsplit("/", 1)[-1]
    return f"https://bsky.app/profile/{handle or did}/post/{rkey}"


# did -> (handle, followers, expiry on the monotonic clock); shared by search and Jetstream.
_PROFILES: dict[str, tuple[str | None, int | None, float]] = {}
PROFILE_TTL_SECONDS = 6 * 3600
_PROFILE_REQUEST = HttpParams(retries=1, timeout_seconds=10, max_wait_seconds=5)


async def lookup_profiles(
    client: httpx.AsyncClient, base_url: str, dids: list[str], source: str, headers: dict[str, str] | None = None
) -> dict[str, tuple[str | None, int | None]]:
    """Handles and follower counts by DID (`app.bsky.actor.getProfiles`, 25 per request), cached.

    Reach is what makes a complaint urgent, and post views carry no follower count. A failed
    lookup is logged and the posts go on without it: enrichment never fails a page.
    """
    now = time.monotonic()
    wanted = [d for d in dict.fromkeys(dids) if d not in _PROFILES or _PROFILES[d][2] < now]
    for start in range(0, len(wanted), 25):
        chunk = wanted[start:start + 25]
        try:
            response = await request(
                client, "GET", f"{base_url.rstrip('/')}/xrpc/app.bsky.actor.getProfiles", source=source,
                params=_PROFILE_REQUEST, query=[("actors", d) for d in chunk], headers=headers,
            )
            found = get(await read_json(response), "profiles")
        except SourceError as exc:
            log.warning("bluesky profile lookup failed; posts kept without follower counts",
                        extra={"source": source, "error": str(exc)[:200]})
            break
        for did in chunk:  # remembered as unknown for a while (deleted or suspended accounts)
            _PROFILES[did] = (None, None, now + PROFILE_TTL_SECONDS / 6)
        for profile in found if isinstance(found, list) else []:
            profile_did = text_field(profile, "did")
            if profile_did:
                _PROFILES[profile_did] = (text_field(profile, "handle"), optional_count(get(profile, "followersCount")),
                                          now + PROFILE_TTL_SECONDS)
    return {d: _PROFILES[d][:2] for d in dids if d in _PROFILES}


def with_profiles(posts: list[FetchedPost], profiles: dict[str, tuple[str | None, int | None]]) -> list[FetchedPost]:
    """Posts with follower counts filled in (and DIDs replaced by handles)."""
    out = []
    for post in posts:
        did = post.external_id.split("/")[2] if post.external_id.startswith("at://") else None
        if did not in profiles:
            out.append(post)
            continue
        handle, followers = profiles[did]
        changes: dict[str, Any] = {"author_followers": followers if followers is not None else post.author_followers}
        if handle and post.author == did:
            changes.update(author=handle[:300], url=permalink(did, handle, post.external_id))
        out.append(dataclasses.replace(post, **changes))
    return out


def normalise_post_view(source: str, view: Any) -> FetchedPost | None:
    """A searchPosts `postView` as a post; None for posts the author hid from logged-out viewers."""
    view = require_dict(view, "postView")
    uri = bounded_id(view.get("uri"), "uri")
    record = require_dict(view.get("record"), "record")
    text = text_field(record, "text")
    if text is None:
        raise InvalidItem("record.text missing")
    labels = view.get("labels") if isinstance(view.get("labels"), list) else []
    if any(get(label, "val") == _HIDDEN_LABEL for label in labels):
        return None
    text = tidy(text)
    if not text:
        return None
    author = require_dict(view.get("author"), "author")
    did = text_field(author, "did") or (uri.split("/")[2] if uri.startswith("at://") else None)
    handle = text_field(author, "handle")
    if not (handle or did):
        raise InvalidItem("author has neither handle nor did")
    indexed = view.get("indexedAt")
    try:
        created = parse_time(record.get("createdAt"), "record.createdAt")
    except InvalidItem:
        created = parse_time(indexed, "indexedAt")
    if indexed is not None:
        try:  # createdAt is client-supplied; a clock far in the future must not skew buckets
            seen = parse_time(indexed, "indexedAt")
            if created > seen + timedelta(minutes=5):
                created = seen
        except InvalidItem:
            pass
    langs = record.get("langs")
    lang = langs[0] if isinstance(langs, list) and langs and isinstance(langs[0], str) else None
    return FetchedPost(
        source=source,
        external_id=uri,
        text=text,
        created_at=created,
        author=(handle or did or "")[:300],
        url=permalink(did or "", handle, uri) if uri.startswith("at://") else None,
        author_followers=optional_count(get(author, "followersCount")),
        lang=short_text(lang, 20),
        likes=as_count(view.get("likeCount")),
        reposts=as_count(view.get("repostCount")) + as_count(view.get("quoteCount")),
        replies=as_count(view.get("replyCount")),
        raw=view,
    )


class BlueskyParams(HttpParams):
    base_url: str = Field(default="https://bsky.social", description="your PDS; it proxies app.bsky.* to the AppView")
    identifier: str = Field(default="", description="handle or email of the account; empty = anonymous")
    app_password: SecretStr = SecretStr("")
    lang: str | None = None
    limit: int = Field(default=100, ge=1, le=100)
    overlap_seconds: float = Field(default=120, ge=0)
    fetch_followers: bool = Field(default=True, description="look up authors' follower counts (cached)")


# Sessions live for the process, keyed by (PDS, identifier): never log in per poll. A failed
# login is not retried for a while: createSession allows 30 per 5 min and 300 per day, and
# tripping that locks the account for up to a day.
_SESSIONS: dict[tuple[str, str], dict[str, str]] = {}
_LOGIN_FAILED: dict[tuple[str, str], tuple[float, str]] = {}
LOGIN_COOLDOWN_SECONDS = 15 * 60


class BlueskySearch:
    kind: ClassVar[str] = "bluesky"
    mode: ClassVar[str] = "poll"
    params_model: ClassVar[type[BlueskyParams]] = BlueskyParams

    def __init__(self, *, source_name: str, query_terms: list[str], params: BlueskyParams) -> None:
        self.source = source_name
        self.terms = [t.strip() for t in query_terms if t.strip()]
        self.params = params
        self._base = params.base_url.rstrip("/")

    async def _session(self, client: httpx.AsyncClient, refresh: bool = False) -> dict[str, str] | None:
        p = self.params
        if not p.identifier:
            return None
        key = (self._base, p.identifier)
        current = _SESSIONS.get(key)
        if current and not refresh:
            return current
        if current and refresh:
            try:
                response = await request(
                    client, "POST", f"{self._base}/xrpc/com.atproto.server.refreshSession", source=self.source,
                    params=p, headers={"Authorization": f"Bearer {current['refreshJwt']}"},
                )
                _SESSIONS[key] = self._session_from(await read_json(response))
                return _SESSIONS[key]
            except HttpError:
                _SESSIONS.pop(key, None)  # refresh token expired too: log in again below
        blocked_until = _LOGIN_FAILED.get(key)
        if blocked_until is not None and blocked_until[0] > time.monotonic():
            raise SourceError(f"bluesky login failed recently ({blocked_until[1]}); not retrying for "
                              f"{blocked_until[0] - time.monotonic():.0f}s to spare the account's login limit")
        try:
            response = await request(
                client, "POST", f"{self._base}/xrpc/com.atproto.server.createSession", source=self.source,
                params=p, json={"identifier": p.identifier, "password": p.app_password.get_secret_value()},
            )
            _SESSIONS[key] = self._session_from(await read_json(response))
        except SourceError as exc:
            _LOGIN_FAILED[key] = (time.monotonic() + LOGIN_COOLDOWN_SECONDS, str(exc)[:200])
            raise
        _LOGIN_FAILED.pop(key, None)
        log.info("bluesky session created", extra={"source": self.source, "identifier": p.identifier})
        return _SESSIONS[key]

    @staticmethod
    def _session_from(body: Any) -> dict[str, str]:
        access, refresh = get(body, "accessJwt"), get(body, "refreshJwt")
        if not isinstance(access, str) or not isinstance(refresh, str):
            raise MalformedPayload("createSession/refreshSession answer has no accessJwt/refreshJwt")
        return {"accessJwt": access, "refreshJwt": refresh}

    async def _search(self, client: httpx.AsyncClient, query: list[tuple[str, Any]]) -> Any:
        session = await self._session(client)
        for attempt in range(2):
            headers = {"Authorization": f"Bearer {session['accessJwt']}"} if session else {}
            try:
                response = await request(
                    client, "GET", f"{self._base}/xrpc/app.bsky.feed.searchPosts", source=self.source,
                    params=self.params, query=query, headers=headers,
                )
                return await read_json(response)
            except HttpError as exc:
                expired = exc.status == 401 or (exc.status == 400 and "ExpiredToken" in exc.body)
                if session is None or not expired or attempt:
                    raise
                session = await self._session(client, refresh=True)
        raise AssertionError("unreachable")  # pragma: no cover

    async def pages(self, client: httpx.AsyncClient, cursor: str | None) -> AsyncIterator[Page]:
        state = load_state(cursor, self.source)
        budget = self.params.max_pages
        failures = PartialFailures()
        await self._session(client)  # once, before any term: a failed login fails the poll once
        for term in self.terms:
            if budget <= 0:
                break
            newest = state.get(term)
            try:
                async for page, used in self._term_pages(client, term, newest, budget):
                    budget -= used
                    if page.cursor is not None:
                        state[term] = page.cursor
                        page = Page(page.posts, dump_state(state), page.errors)
                    yield page
            except SourceError as exc:
                failures.add(f"term {term!r}", exc, self.source)
        failures.raise_if_any()

    async def _term_pages(
        self, client: httpx.AsyncClient, term: str, newest: str | None, budget: int
    ) -> AsyncIterator[tuple[Page, int]]:  # (page, requests it cost)
        """Pages for one term, newest first; only the last carries the new watermark."""
        p = self.params
        query: list[tuple[str, Any]] = [("q", f'"{term}"' if " " in term else term), ("sort", "latest"),
                                        ("limit", p.limit)]
        watermark = None
        if newest:
            try:
                watermark = parse_time(newest)
                query.append(("since", (watermark - timedelta(seconds=p.overlap_seconds)).isoformat()))
            except InvalidItem:
                watermark = None
        if p.lang:
            query.append(("lang", p.lang))
        best: datetime | None = watermark
        page_cursor: str | None = None
        for used in range(1, budget + 1):
            body = await self._search(client, query + ([("cursor", page_cursor)] if page_cursor else []))
            views = expect_type(get(body, "posts"), list, "searchPosts.posts")
            posts, errors = collect(views, lambda v: normalise_post_view(self.source, v), self.source)
            if p.fetch_followers and posts:
                session = await self._session(client)
                auth = {"Authorization": f"Bearer {session['accessJwt']}"} if session else None
                dids = [post.external_id.split("/")[2] for post in posts]
                posts = with_profiles(posts, await lookup_profiles(client, self._base, dids, self.source, auth))
            for view in views:
                try:
                    seen = parse_time(get(view, "indexedAt"))
                except InvalidItem:
                    continue
                best = seen if best is None or seen > best else best
            next_cursor = get(body, "cursor")
            more = bool(views) and isinstance(next_cursor, str) and bool(next_cursor)
            done = not more or used == budget or watermark is None  # a first poll starts from now
            if more and used == budget and watermark is not None:
                log.warning("page budget spent before catching up; older posts of this poll are skipped",
                            extra={"source": self.source, "term": term, "max_pages": budget})
            if done:
                yield Page(posts, best.isoformat() if best else None, errors), 1
                return
            yield Page(posts, None, errors), 1
            page_cursor = next_cursor
