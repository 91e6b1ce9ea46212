"""Storing what connectors fetch: one page = one transaction (posts, cursor and source health).

A post already stored (same source and external id) is skipped, so re-polls never double-count.
An exact re-post of a post the brand already has (same normalised text) is stored pointing at the
original (`duplicate_of`) and adds its engagement to the original. It is not scored, queued or
linked to incidents on its own; one by another author still counts as a mention in the volume,
with the original's verdict (`pipeline.pending_copies`).
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
    """Insert new posts of one brand; see the module docstring for the rules.

    Works per batch: one query finds posts already stored, one finds the originals of re-posts.
    """
    on_topic = [p for p in posts if matcher is None or matcher.matches(p.text)]
    off_topic = len(posts) - len(on_topic)
    known = _stored_keys(session, on_topic)
    fresh: list[FetchedPost] = []
    for item in on_topic:
        key = (item.source, item.external_id)
        if key not in known:
            known.add(key)  # a page may repeat an item
            fresh.append(item)
    seen = len(on_topic) - len(fresh)
    digests = [content_hash(item.text) for item in fresh]
    originals = _originals(session, brand, set(digests))
    rows: list[tuple[Post, str]] = []
    for item, digest in zip(fresh, digests, strict=True):
        row = Post(
            source=item.source, external_id=item.external_id, brand=brand, url=item.url,
            author=item.author, author_followers=item.author_followers, text=item.text,
            lang=item.lang, created_at=item.created_at, fetched_at=now, likes=item.likes,
            reposts=item.reposts, replies=item.replies, score=item.score, content_hash=digest,
            raw=item.raw,
        )
        rows.append((row, digest))
        if digest not in originals:
            originals[digest] = row
    session.add_all(row for row, _ in rows)
    session.flush()
    duplicates = 0
    for row, digest in rows:
        original = originals[digest]
        if original is row:
            continue
        duplicates += 1
        row.duplicate_of = original.id
        session.execute(  # in SQL, so concurrent ingests of re-posts never lose an increment
            update(Post)
            .where(Post.id == original.id)
            .values(reposts=Post.reposts + 1 + row.reposts, likes=Post.likes + row.likes,
                    replies=Post.replies + row.replies)
        )
    session.flush()
    return IngestResult(len(rows) - duplicates, duplicates, seen, off_topic)


def _stored_keys(session: Session, posts: list[FetchedPost]) -> set[tuple[str, str]]:
    keys: set[tuple[str, str]] = set()
    by_source: dict[str, list[str]] = {}
    for item in posts:
        by_source.setdefault(item.source, []).append(item.external_id)
    for source, ids in by_source.items():
        for chunk in _chunks(ids):
            found = session.scalars(select(Post.external_id).where(Post.source == source, Post.external_id.in_(chunk)))
            keys.update((source, external_id) for external_id in found)
    return keys


def _originals(session: Session, brand: str, digests: set[str]) -> dict[str, Post]:
    """The first stored, non-duplicate post of the brand for each content hash."""
    originals: dict[str, Post] = {}
    for chunk in _chunks(sorted(digests)):
        rows = session.scalars(
            select(Post)
            .where(Post.brand == brand, Post.content_hash.in_(chunk), Post.duplicate_of.is_(None))
            .order_by(Post.id)
        )
        for row in rows:
            originals.setdefault(row.content_hash, row)
    return originals


def _chunks(items: list[str], size: int = 500) -> list[list[str]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


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
