"""`flarewatch replay`: the whole pipeline over a timestamped post stream, on a simulated clock.

Posts (JSON lines in the `connectors.records.PostRecord` shape, as written by make_replay.py) are
released minute by minute as the clock reaches their `created_at`: stored through
`monitor.core.ingest.store_posts` (brand matching, dedupe, re-post folding), scored by
`monitor.pipeline.score_pending`, and `detect` runs at every tick, exactly as the daemon's jobs
would with a one-minute detect interval. The output has one JSON line per incident with the
simulated time it was detected; score_replay.py reads it as is.
"""
from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from monitor.core.posts import FetchedPost
from monitor.core.brands import BrandMatcher
from connectors.records import post_from_record
from alerts.routing import notifier
from monitor.core.boundary import Rejected, decode_json, parse_one
from models import Scorer
from monitor.core.clock import SimulatedClock
from monitor.config import Config
from monitor.detection.aggregates import floor_minute
from monitor.detection.incidents import detect
from monitor.core.incidents import incident_events
from monitor.core.ingest import store_posts
from monitor.pipeline import score_pending
from monitor.core.storage.db import make_engine, migrate, session_factory, transaction
from monitor.core.storage.schema import Incident

REPLAY_SOURCE = "replay"
SCORE_BATCH = 256


class ReplayError(ValueError):
    """A post stream that cannot be replayed, with the line that is wrong."""


@dataclass(frozen=True)
class ReplayResult:
    incidents: list[dict[str, Any]]
    posts: int
    ticks: int


def _replayed_post(line: str) -> FetchedPost:
    item = decode_json(line)
    source = item.get("source") if isinstance(item, dict) else None
    return post_from_record(str(source or REPLAY_SOURCE), item)


def read_posts(path: Path, on_bad_line: Callable[[int, str], None] | None = None) -> list[FetchedPost]:
    """All posts of a JSONL file, in time order. A bad line is an error naming the line, or, with
    `on_bad_line`, reported to it (line number, reason) and skipped, as every command does."""
    posts: list[FetchedPost] = []
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise ReplayError(f"{path}: cannot read: {exc.strerror}") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            post = parse_one(_replayed_post, line, number)  # whatever is wrong with a line, it is named
            if isinstance(post, Rejected):
                if on_bad_line is None:
                    raise ReplayError(f"{path}:{post.position}: {post.reason}")
                on_bad_line(post.position, post.reason)
            else:
                posts.append(post)
    if not posts:
        raise ReplayError(f"{path}: no posts" + (" (every line was bad)" if on_bad_line else ""))
    return sorted(posts, key=lambda p: (p.created_at, p.source, p.external_id))


def _brand_of(config: Config) -> Callable[[FetchedPost], str | None]:
    matchers = [(b.name, BrandMatcher(b.terms, b.exclude)) for b in config.brands]

    def brand_of(post: FetchedPost) -> str | None:
        return next((name for name, matcher in matchers if matcher.matches(post.text)), None)

    return brand_of


@contextmanager
def _database(url: str | None) -> Iterator[sessionmaker[Session]]:
    with tempfile.TemporaryDirectory(prefix="flarewatch-replay-") as folder:
        engine = make_engine(url or f"sqlite:///{Path(folder) / 'replay.db'}")
        try:
            migrate(engine)
            yield session_factory(engine)
        finally:
            engine.dispose()


def replay(
    posts: list[FetchedPost], config: Config, scorer: Scorer, db_url: str | None = None,
    step: timedelta = timedelta(minutes=1), progress: Callable[[int, int], None] | None = None,
    on_tick: Callable[[sessionmaker[Session], SimulatedClock], None] | None = None,
) -> ReplayResult:
    """Replay `posts` through ingest, scoring and detection; returns the incidents as dicts.

    The clock starts at the first post's minute and runs until every incident has had the
    chance to close (the windows after the last post). Deterministic: the same posts,
    config and scorer give the same incidents. `on_tick` runs after detection at every tick
    (the demo delivers and escalates alerts there).
    """
    if not config.brands:
        raise ReplayError("the configuration has no brands to match posts against")
    brand_of = _brand_of(config)
    notify = notifier(config.alerts)
    start = floor_minute(posts[0].created_at)
    # After the last post every window empties, so incidents are back at the baseline and close.
    end = posts[-1].created_at + timedelta(minutes=2 * max(config.detection.windows_minutes) + 1)
    clock = SimulatedClock(start)
    total_ticks = int((end - start) / step) + 1
    with _database(db_url) as sessions:
        index = ticks = 0
        while clock.now() <= end:
            now = clock.now()
            batch: dict[str, list[FetchedPost]] = {}
            while index < len(posts) and posts[index].created_at <= now:
                brand = brand_of(posts[index])
                if brand is not None:
                    batch.setdefault(brand, []).append(posts[index])
                index += 1
            if batch:
                with transaction(sessions) as session:
                    for brand, items in batch.items():
                        store_posts(session, brand, None, items, now)
                while score_pending(sessions, scorer, now, SCORE_BATCH) == SCORE_BATCH:
                    pass
            detect(sessions, config.brands, config.detection, notify, clock)
            if on_tick is not None:
                on_tick(sessions, clock)
            ticks += 1
            if progress is not None:
                progress(ticks, total_ticks)
            clock.advance(step)
        with sessions() as session:
            incidents = incident_records(session)
    return ReplayResult(incidents, len(posts), ticks)


def incident_records(session: Session) -> list[dict[str, Any]]:
    """Each incident as one JSON-ready dict: detection time, estimated start, peak numbers."""
    out = []
    for incident in session.scalars(select(Incident).order_by(Incident.opened_at, Incident.id)):
        events = incident_events(session, incident.id)
        opened = next((e for e in events if e.kind == "opened"), None)
        detail = incident.detail or {}
        out.append({
            "id": incident.id, "brand": incident.brand, "title": incident.title,
            "opened_at": _iso(incident.opened_at), "detected_at": _iso(incident.opened_at),
            "started_at": _iso(incident.started_at), "closed_at": _iso(incident.closed_at),
            "severity": incident.severity, "status": incident.status,
            "first_signals": [s["key"] for s in (opened.data or {}).get("signals", [])] if opened else [],
            "peak": detail.get("peak"), "peak_excess": detail.get("peak_excess"),
            "merged_into": detail.get("merged_into"),
            "events": [{"at": _iso(e.at), "kind": e.kind} for e in events if not e.kind.startswith("post_")],
        })
    return out


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def write_incidents(records: list[dict[str, Any]], path: Path) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
