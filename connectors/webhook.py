"""Push ingestion: sources that deliver to us POST a JSON array of posts to `/api/ingest`.

The web app owns the route and its token check; it calls `parse_pushed` and stores the posts
with `monitor.core.ingest.store_posts` under the named push source. The `webhook` kind exists so a
config can declare such a source (for brand, status and health); it has nothing to poll.
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from typing import ClassVar

import httpx
from pydantic import Field, SecretStr

from connectors.base import SourceParams
from monitor.core.posts import FetchedPost, Page
from connectors.records import PostRecord, post_from_record
from monitor.core.boundary import MalformedJson, decode_json, parse_each

__all__ = ["MAX_ITEMS", "PostRecord", "WebhookParams", "WebhookSource", "parse_pushed"]

MAX_ITEMS = 1_000  # per request; bigger batches must be split by the sender


def parse_pushed(source_name: str, body: bytes) -> tuple[list[FetchedPost], list[str]]:
    """Parse a pushed body: the valid posts, and one message per rejected item ("item 3: text: …").

    The body is a JSON array of post objects (or `{"posts": [...]}`). A body that is not that at
    all gives no posts and one message starting with "body:".
    """
    try:
        data = decode_json(body)
    except MalformedJson as exc:
        return [], [f"body: {exc}"]
    if isinstance(data, dict) and isinstance(data.get("posts"), list):
        data = data["posts"]
    if not isinstance(data, list):
        return [], [f"body: expected a JSON array of posts, got {type(data).__name__}"]
    if len(data) > MAX_ITEMS:
        return [], [f"body: {len(data)} posts in one request; send at most {MAX_ITEMS}"]
    parsed = parse_each(data, lambda item: post_from_record(source_name, item))
    return parsed.items, [f"item {r.position}: {r.reason}" for r in parsed.rejected]


class WebhookParams(SourceParams):
    token: SecretStr | None = Field(default=None, description="if set, pushes to this source must present it")


class WebhookSource:
    kind: ClassVar[str] = "webhook"
    mode: ClassVar[str] = "push"
    params_model: ClassVar[type[WebhookParams]] = WebhookParams

    def __init__(self, *, source_name: str, query_terms: list[str], params: WebhookParams) -> None:
        self.source = source_name
        self.params = params

    async def pages(self, client: httpx.AsyncClient, cursor: str | None) -> AsyncIterator[Page]:
        return
        yield  # an async generator that yields nothing: posts arrive through the web route
