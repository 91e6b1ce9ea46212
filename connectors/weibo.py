"""Weibo keyword search through the m.weibo.cn mobile API ("visitor" mode), Chinese text.

Unofficial and guarded by anti-bot rules (418/432 answers, `ok: -100` login walls): it fails soft,
a paste-in `cookie` secret helps, and polls should be minutes apart. Search has no since-cursor:
the cursor remembers recently seen post ids and paging stops at a page with nothing new.
Times on m.weibo.cn are relative ("5分钟前", "昨天 12:30", "06-14") in China time (UTC+8).
"""
from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

import httpx
from pydantic import Field, SecretStr

from monitor.core.posts import FetchedPost, Page
from connectors.http import HttpParams, MalformedPayload, SourceError, read_json, expect_type, request
from connectors.normal import (
    InvalidItem, as_count, bounded_id, get, html_to_text, optional_count, parse_time, require_dict, text_field,
)
from connectors.paging import PartialFailures, collect, dump_state, load_state

log = logging.getLogger("flarewatch.connectors")

CHINA = timezone(timedelta(hours=8))
_MINUTES = re.compile(r"^(\d+)\s*分钟前$")
_HOURS = re.compile(r"^(\d+)\s*小时前$")
_SECONDS = re.compile(r"^(\d+)\s*秒前$")
_DAY_TIME = re.compile(r"^(今天|昨天|前天)\s*(\d{1,2}):(\d{2})$")
_MONTH_DAY = re.compile(r"^(\d{1,2})-(\d{1,2})$")
_FULL_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")


def parse_weibo_time(value: Any, now: datetime) -> datetime:
    """m.weibo.cn's relative or partial times, and the full form, as aware UTC."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidItem("created_at missing")
    text = value.strip()
    local_now = now.astimezone(CHINA)
    try:
        if text in ("刚刚", "just now"):
            return now.astimezone(timezone.utc)
        if m := _SECONDS.match(text):
            return (now - timedelta(seconds=int(m.group(1)))).astimezone(timezone.utc)
        if m := _MINUTES.match(text):
            return (now - timedelta(minutes=int(m.group(1)))).astimezone(timezone.utc)
        if m := _HOURS.match(text):
            return (now - timedelta(hours=int(m.group(1)))).astimezone(timezone.utc)
        if m := _DAY_TIME.match(text):
            back = {"今天": 0, "昨天": 1, "前天": 2}[m.group(1)]
            day = (local_now - timedelta(days=back)).date()
            when = datetime(day.year, day.month, day.day, int(m.group(2)), int(m.group(3)), tzinfo=CHINA)
            return when.astimezone(timezone.utc)
        if m := _MONTH_DAY.match(text):
            when = datetime(local_now.year, int(m.group(1)), int(m.group(2)), tzinfo=CHINA)
            if when > local_now + timedelta(days=1):  # "12-31" read in January is last year
                when = when.replace(year=when.year - 1)
            return when.astimezone(timezone.utc)
        if m := _FULL_DATE.match(text):
            return datetime(int(m.group(1)), int(m.group(2)), int(m.group(3)), tzinfo=CHINA).astimezone(timezone.utc)
        return datetime.strptime(text, "%a %b %d %H:%M:%S %z %Y").astimezone(timezone.utc)
    except (ValueError, OverflowError):
        pass
    return parse_time(text, "created_at")


def normalise_mblog(source: str, mblog: Any, now: datetime) -> FetchedPost | None:
    """An `mblog` as a post: HTML stripped, emoji kept as their alt text ("[偷笑]")."""
    mblog = require_dict(mblog, "mblog")
    if str(mblog.get("deleted", "")) == "1":
        return None
    post_id = bounded_id(mblog.get("id") or mblog.get("mid"), "id")
    raw_text = mblog.get("text") if mblog.get("text") is not None else mblog.get("text_raw")
    if not isinstance(raw_text, str):
        raise InvalidItem("text missing")
    text = html_to_text(raw_text)
    if not text:
        return None
    user = mblog.get("user") if isinstance(mblog.get("user"), dict) else {}
    author = text_field(user, "screen_name") or (str(user["id"]) if isinstance(user.get("id"), (int, str)) else "")
    if not author:
        raise InvalidItem("user missing")
    bid = text_field(mblog, "bid")
    return FetchedPost(
        source=source,
        external_id=post_id,
        text=text,
        created_at=parse_weibo_time(mblog.get("created_at"), now),
        author=author[:300],
        url=f"https://m.weibo.cn/status/{bid or post_id}",
        author_followers=optional_count(user.get("followers_count")),
        lang="zh",
        likes=as_count(mblog.get("attitudes_count")),
        reposts=as_count(mblog.get("reposts_count")),
        replies=as_count(mblog.get("comments_count")),
        raw=mblog,
    )


def mblogs(cards: list[Any]) -> list[Any]:
    """The posts inside search cards: `card_type` 9 directly, 11 inside `card_group`; skip the rest."""
    found: list[Any] = []
    for card in cards:
        if not isinstance(card, dict):
            continue
        if "mblog" in card:
            found.append(card["mblog"])
        group = card.get("card_group")
        if isinstance(group, list):
            found += [c["mblog"] for c in group if isinstance(c, dict) and "mblog" in c]
    return found


class WeiboParams(HttpParams):
    base_url: str = "https://m.weibo.cn"
    search_type: int = Field(default=61, description="61 realtime (newest first), 1 all, 60 hot")
    cookie: SecretStr = Field(default=SecretStr(""), description='optional SUB=… cookie, e.g. "${WEIBO_COOKIE}"')
    max_pages: int = Field(default=3, ge=1)
    fetch_long_text: bool = True
    remember: int = Field(default=1000, ge=10, description="post ids remembered to stop paging")
    user_agent: str = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
                       "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1")


class Weibo:
    kind: ClassVar[str] = "weibo"
    mode: ClassVar[str] = "poll"
    params_model: ClassVar[type[WeiboParams]] = WeiboParams

    def __init__(self, *, source_name: str, query_terms: list[str], params: WeiboParams) -> None:
        self.source = source_name
        self.params = params
        self.terms = [t.strip() for t in query_terms if t.strip()]

    def _headers(self) -> dict[str, str]:
        headers = {"Referer": f"{self.params.base_url}/", "X-Requested-With": "XMLHttpRequest",
                   "MWeibo-Pwa": "1", "Accept": "application/json, text/plain, */*"}
        if cookie := self.params.cookie.get_secret_value():
            headers["Cookie"] = cookie
        return headers

    async def pages(self, client: httpx.AsyncClient, cursor: str | None) -> AsyncIterator[Page]:
        state = load_state(cursor, self.source)
        seen: list[str] = [s for s in state.get("seen", []) if isinstance(s, str)]
        budget = self.params.max_pages
        failures = PartialFailures()
        for term in self.terms:
            page_no: int | None = 1
            try:
                while budget > 0 and page_no is not None:
                    budget -= 1
                    data = await self._search(client, term, page_no)
                    if data is None:
                        break
                    items = mblogs(expect_type(data.get("cards", []), list, "data.cards"))
                    ids = [str(get(m, "id") or get(m, "mid")) for m in items if get(m, "id") or get(m, "mid")]
                    known = set(seen)
                    fresh = [m for m, i in zip(items, ids) if i not in known] if len(ids) == len(items) else items
                    now = datetime.now(timezone.utc)
                    posts, errors = collect(fresh, lambda m: normalise_mblog(self.source, m, now), self.source)  # noqa: B023 - called at once
                    posts = [await self._full_text(client, post) for post in posts]
                    seen = (seen + [i for i in ids if i not in known])[-self.params.remember:]
                    state["seen"] = seen
                    yield Page(posts, dump_state(state), errors)
                    next_page = get(data, "cardlistInfo", "page")
                    stale = bool(items) and not fresh
                    page_no = int(next_page) if isinstance(next_page, (int, str)) and str(next_page).isdigit() \
                        and items and not stale else None
            except SourceError as exc:
                failures.add(f"term {term!r}", exc, self.source)
        failures.raise_if_any()

    async def _search(self, client: httpx.AsyncClient, term: str, page: int) -> dict[str, Any] | None:
        p = self.params
        query: dict[str, Any] = {"containerid": f"100103type={p.search_type}&q={term}", "page_type": "searchall"}
        if page > 1:
            query["page"] = page
        response = await request(client, "GET", f"{p.base_url.rstrip('/')}/api/container/getIndex",
                                 source=self.source, params=p, query=query, headers=self._headers())
        body = expect_type(await read_json(response), dict, "getIndex response")
        ok = body.get("ok")
        if ok == 1:
            return expect_type(body.get("data"), dict, "data")
        if ok == 0:  # "no results" and similar
            return None
        raise MalformedPayload(f"weibo answered ok={ok!r} (login wall or block): {str(body)[:160]}")

    async def _full_text(self, client: httpx.AsyncClient, post: FetchedPost) -> FetchedPost:
        if not (self.params.fetch_long_text and post.raw.get("isLongText") is True):
            return post
        try:
            response = await request(client, "GET", f"{self.params.base_url.rstrip('/')}/statuses/extend",
                                     source=self.source, params=self.params, query={"id": post.external_id},
                                     headers=self._headers())
            long_text = get(await read_json(response), "data", "longTextContent")
        except SourceError as exc:
            log.warning("weibo long text unavailable; keeping the excerpt",
                        extra={"source": self.source, "id": post.external_id, "error": str(exc)[:200]})
            return post
        if isinstance(long_text, str) and html_to_text(long_text):
            return dataclasses.replace(post, text=html_to_text(long_text))
        return post
