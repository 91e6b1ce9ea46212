"""Hacker News through the Algolia search API: newest stories and comments mentioning each term.

No auth. The cursor keeps, per term, the largest `created_at_i` stored; a poll asks for
`created_at_i>=<it>` (items share seconds; re-fetched ones are dropped by the database key) and
pages by `page` until `nbPages`. Pages come newest first, so only the last one of a term moves the
cursor. A first poll reads one page.
"""
from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import httpx
from pydantic import Field

from monitor.core.posts import FetchedPost, Page
from connectors.http import HttpParams, SourceError, read_json, expect_type, request
from connectors.normal import (
    InvalidItem, as_count, bounded_id, get, html_to_text, parse_time, require_dict, text_field,
)
from connectors.paging import PartialFailures, collect, dump_state, load_state

log = logging.getLogger("flarewatch.connectors")


def normalise_hit(source: str, hit: Any) -> FetchedPost | None:
    """A story or comment hit as a post; highlight markup and HTML entities are stripped."""
    hit = require_dict(hit, "hit")
    object_id = bounded_id(hit.get("objectID"), "objectID")
    tags = hit.get("_tags") if isinstance(hit.get("_tags"), list) else []
    comment = hit.get("comment_text")
    if isinstance(comment, str) or "comment" in tags:
        text = html_to_text(comment if isinstance(comment, str) else "")
        replies = 0
    else:
        parts = [text_field(hit, "title"), html_to_text(text_field(hit, "story_text") or ""), text_field(hit, "url")]
        text = "\n".join(p.strip() for p in parts if p and p.strip())
        replies = as_count(hit.get("num_comments"))
    if not text:
        return None
    author = text_field(hit, "author")
    if not author:
        raise InvalidItem("author missing")
    created = hit.get("created_at_i") if hit.get("created_at_i") is not None else hit.get("created_at")
    points = hit.get("points")
    return FetchedPost(
        source=source,
        external_id=object_id,
        text=text,
        created_at=parse_time(created, "created_at"),
        author=author[:300],
        url=f"https://news.ycombinator.com/item?id={object_id}",
        likes=as_count(points),
        replies=replies,
        score=points if isinstance(points, int) and not isinstance(points, bool) and abs(points) < 2**62 else None,
        raw=hit,
    )


class HackerNewsParams(HttpParams):
    base_url: str = "https://hn.algolia.com/api/v1"
    tags: str = Field(default="(story,comment)", description="Algolia tags filter: (story,comment), story, comment")
    hits_per_page: int = Field(default=100, ge=1, le=1000)


class HackerNews:
    kind: ClassVar[str] = "hackernews"
    mode: ClassVar[str] = "poll"
    params_model: ClassVar[type[HackerNewsParams]] = HackerNewsParams

    def __init__(self, *, source_name: str, query_terms: list[str], params: HackerNewsParams) -> None:
        self.source = source_name
        self.params = params
        self.terms = [t.strip() for t in query_terms if t.strip()]

    async def pages(self, client: httpx.AsyncClient, cursor: str | None) -> AsyncIterator[Page]:
        state = load_state(cursor, self.source)
        budget = self.params.max_pages
        failures = PartialFailures()
        for term in self.terms:
            if budget <= 0:
                break
            try:
                since = state.get(term) if isinstance(state.get(term), int) else None
                best = since
                page_no = 0
                while budget > 0:
                    budget -= 1
                    body = await self._search(client, term, since, page_no)
                    hits = expect_type(get(body, "hits"), list, "hits")
                    posts, errors = collect(hits, lambda h: normalise_hit(self.source, h), self.source)
                    for hit in hits:
                        stamp = get(hit, "created_at_i")
                        if isinstance(stamp, int) and not isinstance(stamp, bool):
                            best = stamp if best is None else max(best, stamp)
                    pages = get(body, "nbPages")
                    more = isinstance(pages, int) and page_no + 1 < pages and hits and since is not None
                    if more and budget > 0:
                        yield Page(posts, None, errors)
                        page_no += 1
                        continue
                    if more:
                        log.warning("page budget spent before catching up; older hits of this poll are skipped",
                                    extra={"source": self.source, "term": term})
                    if best is not None:
                        state[term] = best
                    yield Page(posts, dump_state(state), errors)
                    break
            except SourceError as exc:
                failures.add(f"term {term!r}", exc, self.source)
        failures.raise_if_any()

    async def _search(self, client: httpx.AsyncClient, term: str, since: int | None, page: int) -> Any:
        p = self.params
        query: dict[str, Any] = {
            "query": f'"{term}"' if " " in term else term,
            "tags": p.tags,
            "hitsPerPage": p.hits_per_page,
            "page": page,
        }
        if since is not None:
            query["numericFilters"] = f"created_at_i>={since}"
        response = await request(client, "GET", f"{p.base_url.rstrip('/')}/search_by_date", source=self.source,
                                 params=p, query=query)
        return await read_json(response)
