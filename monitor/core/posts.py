"""Posts as connectors deliver them: one normalised `FetchedPost`, and a `Page` of them with its cursor.

The daemon stores each page's posts and the page's cursor in one transaction, so a crash between
pages loses nothing and a restart resumes from the last stored cursor.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class FetchedPost:
    """One public post, normalised. `created_at` is timezone-aware UTC."""

    source: str
    external_id: str
    text: str
    created_at: datetime
    author: str
    url: str | None = None
    author_followers: int | None = None
    lang: str | None = None
    likes: int = 0
    reposts: int = 0
    replies: int = 0
    score: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Page:
    """Posts from one request and the cursor to store once they are saved.

    `errors` counts items that were malformed and skipped (already logged by the connector).
    """

    posts: list[FetchedPost]
    cursor: str | None
    errors: int = 0
