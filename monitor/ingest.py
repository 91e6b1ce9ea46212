"""Storing what connectors fetch: one page = one transaction (posts, cursor and source health).

A post already stored (same source and external id) is skipped, so re-polls never double-count.
An exact re-post of a post the brand already has (same normalised text) is stored pointing at the
original (`duplicate_of`), is neither scored nor counted again, and adds its engagement to the
original so the signal is kept.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from connectors.base import FetchedPost, Page
from connectors.matching import BrandMatcher
from monitor.storage.schema import Post, Source

_SPACES = re.compile(r"\s+")
_LINKS = re.compile(r"https?://\S+")


@dataclass(frozen=True)
class IngestResult:
    stored: int = 0
    duplicates: int = 0
    already_seen: int = 0
    off_topic: int = 0


def content_hash(text: str) -> str:
    """Hash of the text with case, whitespace and links normalised away: what makes a re-post."""
    normal = _SPACES.sub(" ", _LINKS.sub("", text)).strip().casefold()
    return hashlib.sha256(normal.encode("utf-8")).hexdigest()


def ensure_source(session: Session, name: str, brand: str, kind: str) -> Source:
    source = session.get(Source, name)
    if source is None:
        source = Source(name=name, brand=brand, kind=kind, consecutive_failures=0, posts_fetched=0, items_rejected=0)
        session.add(source)
        session.flush()
    else:
        source.brand, source.kind = brand, kind
    return source


def store_posts(
    session: Session, brand: str, matcher: BrandMatcher | None, posts: list[FetchedPost], now: datetime
) -> IngestResult:
    """Insert new posts of one brand; see the module docstring for the rules."""
    stored = duplicates = seen = off_topic = 0
    for item in posts:
        if matcher is not None and not matcher.matches(item.text):
            off_topic += 1
            continue
        exists = session.scalar(
            select(Post.id).where(Post.source == item.source, Post.external_id == item.external_id)
        )
        if exists is not None:
            seen += 1
            continue
        digest = content_hash(item.text)
        original = session.scalar(
            select(Post.id)
            .where(Post.brand == brand, Post.content_hash == digest, Post.duplicate_of.is_(None))
            .order_by(Post.id)
            .limit(1)
        )
        session.add(
            Post(
                source=item.source, external_id=item.external_id, brand=brand, url=item.url,
                author=item.author, author_followers=item.author_followers, text=item.text,
                lang=item.lang, created_at=item.created_at, fetched_at=now, likes=item.likes,
                reposts=item.reposts, replies=item.replies, score=item.score, content_hash=digest,
                duplicate_of=original, raw=item.raw,
            )
        )
        if original is None:
            stored += 1
        else:
            duplicates += 1
            session.execute(
                update(Post)
                .where(Post.id == original)
                .values(reposts=Post.reposts + 1 + item.reposts, likes=Post.likes + item.likes,
                        replies=Post.replies + item.replies)
            )
        session.flush()
    return IngestResult(stored, duplicates, seen, off_topic)


def store_page(
    session: Session, source: Source, brand: str, matcher: BrandMatcher | None, page: Page, now: datetime
) -> IngestResult:
    """Store one fetched page and advance the source's cursor, in the caller's transaction."""
    result = store_posts(session, brand, matcher, page.posts, now)
    if page.cursor is not None:
        source.cursor = page.cursor
    source.posts_fetched += result.stored + result.duplicates
    source.items_rejected += page.errors
    return result
