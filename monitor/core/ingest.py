"""Storing what connectors fetch: one page = one transaction (posts, cursor and source health).

A post already stored (same source and external id) is skipped, so re-polls never double-count.
An exact re-post of a post the brand already has (same normalised text) is stored pointing at the
original (`duplicate_of`) and adds its engagement to the original; the copy's row keeps its own
time and engagement, which the viral read sums for an older original copied again. It is not
scored, queued or linked to incidents on its own; one by another author still counts as a mention
in the volume, with the original's verdict (`pipeline.pending_copies`).
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from monitor.core.posts import FetchedPost, Page
from monitor.core.brands import BrandMatcher
from monitor.core.storage.schema import Post, Source

_SPACES = re.compile(r"\s+")
_LINKS = re.compile(r"https?://\S+")
T = TypeVar("T")


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


# Each dialect's insert() has on_conflict_do_nothing; SQLAlchemy's stubs type them as the generic Insert.
DIALECT_INSERT: dict[str, Callable[..., Any]] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def ensure_source(session: Session, name: str, brand: str, kind: str) -> Source:
    """The source's row, created if needed (an upsert: two first pushes at once both succeed)."""
    source = session.get(Source, name)
    if source is None:
        insert: Callable[..., Any] = DIALECT_INSERT[session.get_bind().dialect.name]
        session.execute(insert(Source).values(name=name, brand=brand, kind=kind, consecutive_failures=0,
                                              posts_fetched=0, items_rejected=0).on_conflict_do_nothing())
        source = session.get(Source, name)
        assert source is not None
    if (source.brand, source.kind) != (brand, kind):
        source.brand, source.kind = brand, kind
    return source


def count_on_source(session: Session, name: str, fetched: int, rejected: int) -> None:
    """Add to a source's counters in SQL, so concurrent pushes to one source never lose a count."""
    session.execute(update(Source).where(Source.name == name).values(
        posts_fetched=Source.posts_fetched + fetched, items_rejected=Source.items_rejected + rejected))


def store_posts(
    session: Session, brand: str, matcher: BrandMatcher | None, posts: list[FetchedPost], now: datetime
) -> IngestResult:
    """Insert new posts of one brand; see the module docstring for the rules.

    Works per batch and is an upsert: rows go in with `INSERT ... ON CONFLICT DO NOTHING`, so two
    clients pushing the same batch at once (or two replicas storing it) both succeed, one storing
    it and the other answering `already_seen`. The first of a text in page order is the original;
    rows are inserted in key order, so concurrent batches take their row locks in the same order
    and never deadlock.
    """
    on_topic = [p for p in posts if matcher is None or matcher.matches(p.text)]
    known = _stored_keys(session, on_topic)  # a cheap pre-filter; the upsert below is what is safe
    fresh: list[FetchedPost] = []
    for item in on_topic:
        key = (item.source, item.external_id)
        if key not in known:
            known.add(key)  # a page may repeat an item
            fresh.append(item)
    digests = [content_hash(item.text) for item in fresh]
    originals = {d: (p.id, p.author) for d, p in _originals(session, brand, set(digests)).items()}
    firsts: list[tuple[FetchedPost, str]] = []  # the first of a text not stored yet: a new original
    copies: list[tuple[FetchedPost, str]] = []
    claimed: set[str] = set()
    for item, digest in zip(fresh, digests, strict=True):
        if digest in originals or digest in claimed:
            copies.append((item, digest))
        else:
            claimed.add(digest)
            firsts.append((item, digest))
    inserted = _insert(session, brand, [(item, digest, None, True) for item, digest in firsts], now)
    for item, digest in firsts:
        if (item.source, item.external_id) in inserted:
            originals[digest] = (inserted[(item.source, item.external_id)], item.author)
    missing = {digest for _, digest in copies if digest not in originals}
    if missing:  # their original was stored by a concurrent batch in the meantime
        originals.update({d: (p.id, p.author) for d, p in _originals(session, brand, missing).items()})
    rows: list[tuple[FetchedPost, str, int | None, bool]] = []
    for item, digest in copies:
        original = originals.get(digest)
        if original is None:  # its original is gone (another brand's, or deleted): it is one itself
            rows.append((item, digest, None, True))
        else:  # a copy by the original's own author is the same post seen twice: never counted
            rows.append((item, digest, original[0], item.author != original[1]))
    copied = _insert(session, brand, rows, now)
    duplicates = 0
    bumps: dict[int, list[int]] = {}
    for item, _, original_id, _ in rows:
        if original_id is None or (item.source, item.external_id) not in copied:
            continue
        duplicates += 1
        bump = bumps.setdefault(original_id, [0, 0, 0])
        bump[0] += 1 + item.reposts
        bump[1] += item.likes
        bump[2] += item.replies
    for original_id in sorted(bumps):  # in SQL and in id order: concurrent ingests neither lose nor deadlock
        reposts, likes, replies = bumps[original_id]
        session.execute(
            update(Post).where(Post.id == original_id)
            .values(reposts=Post.reposts + reposts, likes=Post.likes + likes, replies=Post.replies + replies)
        )
    stored = len(inserted) + len(copied)
    seen = len(on_topic) - stored
    return IngestResult(stored - duplicates, duplicates, seen, len(posts) - len(on_topic))


def _insert(session: Session, brand: str, rows: list[tuple[FetchedPost, str, int | None, bool]],
            now: datetime) -> dict[tuple[str, str], int]:
    """INSERT ... ON CONFLICT (source, external_id) DO NOTHING; the keys that went in, with their ids."""
    if not rows:
        return {}
    dialect = session.get_bind().dialect.name
    insert: Callable[..., Any] = DIALECT_INSERT[dialect]
    rows = sorted(rows, key=lambda row: (row[0].source, row[0].external_id))
    stmt = (insert(Post.__table__).on_conflict_do_nothing(index_elements=["source", "external_id"])
            .returning(Post.__table__.c.id, Post.__table__.c.source, Post.__table__.c.external_id))
    values = [{
        "source": item.source, "external_id": item.external_id, "brand": brand, "url": item.url,
        "author": item.author, "author_followers": item.author_followers, "text": item.text, "lang": item.lang,
        "created_at": item.created_at, "fetched_at": now, "likes": item.likes, "reposts": item.reposts,
        "replies": item.replies, "score": item.score, "content_hash": digest, "duplicate_of": original_id,
        "pending": pending, "raw": item.raw,
    } for item, digest, original_id, pending in rows]
    out: dict[tuple[str, str], int] = {}
    for chunk in _chunks(values, 500):
        for row_id, source, external_id in session.connection().execute(stmt, chunk):
            out[(source, external_id)] = row_id
    return out


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


def _chunks(items: list[T], size: int = 500) -> list[list[T]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def store_page(
    session: Session, source: Source, brand: str, matcher: BrandMatcher | None, page: Page, now: datetime
) -> IngestResult:
    """Store one fetched page and advance the source's cursor, in the caller's transaction."""
    result = store_posts(session, brand, matcher, page.posts, now)
    if page.cursor is not None:
        source.cursor = page.cursor
    count_on_source(session, source.name, result.stored + result.duplicates, page.errors)
    return result
