"""Cost of finding new work as history grows: a scoring tick with 10k vs 2M stored posts, and a
detection tick with many negative posts in the last hour.

    python bench/bench_pending.py --db sqlite --stored 10000 2000000
    python bench/bench_pending.py --db postgresql://postgres@127.0.0.1:5432/test --stored 10000 2000000
    python bench/bench_pending.py --db postgresql://... --detect 0 15000 60000 108000

Scoring: `stored` posts already scored and counted (bulk-inserted in SQL), then, per repetition,
256 new posts and one `score_pending` tick with a constant scorer (no model: the database's share
of the tick), plus the time of the pending query alone and of the query main used before the
`pending` flag (NOT EXISTS over scores), for comparison. Detection: `n` negative posts created
over the last hour, then `detect` ticks for the brand. Each size gets a fresh database (a temp
SQLite file, or a new PostgreSQL database on the given server, dropped afterwards).
Numbers are from a shared, loaded machine: the script prints the load average and CPU.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


@contextmanager
def fresh_database(db: str):  # noqa: ANN201
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    if db == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.db"
        return
    name = f"flarewatch_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(make_url(db).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(db).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def bulk_history(engine: Any, count: int, *, negative_since: datetime | None = None) -> None:
    """`count` scored, counted posts in SQL (fast): spread over the past, or over the last hour."""
    from sqlalchemy import text

    pg = engine.dialect.name == "postgresql"
    series = ("SELECT g AS i FROM generate_series(1, :n) AS g" if pg else
              "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < :n) SELECT i FROM s")
    if negative_since is None:  # one post a minute into the past, before T0
        at = ("(TIMESTAMP '2026-01-01 00:00:00' - i * INTERVAL '1 minute')" if pg
              else "datetime('2026-01-01 00:00:00', '-' || i || ' minutes')")
    else:
        start = negative_since.replace(tzinfo=None).isoformat(sep=" ")
        at = (f"(TIMESTAMP '{start}' + (i % 3600) * INTERVAL '1 second')" if pg
              else f"datetime('{start}', '+' || (i % 3600) || ' seconds')")
    label = "'negative'" if negative_since is not None else "CASE WHEN id % 5 = 0 THEN 'negative' ELSE 'neutral' END"
    tag = "hist" if negative_since is None else "hour"
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO posts (source, external_id, brand, author, author_followers, text, lang, created_at, "
            "fetched_at, likes, reposts, replies, content_hash, pending) "
            f"SELECT '{tag}', 'h' || i, 'Acme', 'user' || (i % 5000), i % 1000, 'Acme history post ' || i, 'en', "
            f"{at}, {at}, 0, i % 7, 0, 'hash' || i, false FROM ({series}) AS s"), {"n": count})
        conn.execute(text(
            "INSERT INTO scores (post_id, model, label, confidence, sentiment, lang, scored_at) "
            f"SELECT id, 'bench@1', {label}, 0.9, 0.0, 'en', created_at FROM posts WHERE source = '{tag}'"))
        conn.execute(text("ANALYZE"))


class ConstantScorer:
    model_id = "bench@1"

    def score(self, texts: Any, langs: Any = None) -> list[Any]:
        from models import Sentiment

        return [Sentiment("neutral", 0.9, 0.0, "en", self.model_id) for _ in texts]


OLD_PENDING = """SELECT posts.id FROM posts WHERE posts.duplicate_of IS NULL
AND NOT (EXISTS (SELECT scores.id FROM scores WHERE scores.post_id = posts.id))
ORDER BY posts.created_at, posts.id LIMIT 256"""


def bench_scoring(db: str, stored: int, reps: int) -> dict[str, Any]:
    from sqlalchemy import text

    from monitor.core.posts import FetchedPost
    from monitor.core.ingest import store_posts
    from monitor.pipeline import pending_posts, score_pending
    from monitor.core.storage.db import make_engine, migrate, session_factory, transaction

    with fresh_database(db) as url:
        engine = make_engine(url)
        migrate(engine)
        t = time.perf_counter()
        bulk_history(engine, stored)
        load_s = time.perf_counter() - t
        sessions = session_factory(engine)
        ticks, finds, olds = [], [], []
        for rep in range(reps):
            posts = [FetchedPost(source="new", external_id=f"n{rep}-{i}", text=f"Acme new post {rep} {i}",
                                 created_at=T0 + timedelta(seconds=rep * 300 + i), author=f"u{i}") for i in range(256)]
            with transaction(sessions) as session:
                store_posts(session, "Acme", None, posts, T0)
            with sessions() as session:
                t = time.perf_counter()
                found = pending_posts(session, 256)
                finds.append(time.perf_counter() - t)
                session.rollback()
                assert len(found) == 256
                t = time.perf_counter()
                session.execute(text(OLD_PENDING)).all()
                olds.append(time.perf_counter() - t)
            t = time.perf_counter()
            done = score_pending(sessions, ConstantScorer(), T0, 256)
            ticks.append(time.perf_counter() - t)
            assert done == 256, done
        engine.dispose()
    med = lambda xs: round(statistics.median(xs) * 1000, 2)  # noqa: E731
    return {"bench": "scoring_tick", "db": engine.dialect.name, "stored_posts": stored, "history_load_s": round(load_s, 1),
            "tick_ms_256_posts": med(ticks), "find_pending_ms": med(finds), "old_find_pending_ms": med(olds),
            "reps": reps, "load_avg": os.getloadavg()}


def bench_detect(db: str, negatives: int, reps: int) -> dict[str, Any]:
    from sqlalchemy import event, text

    from monitor.core.clock import SimulatedClock
    from monitor.detection import incidents
    from monitor.config import parse_config
    from monitor.detection.aggregates import record_batch
    from monitor.pipeline import detect_incidents
    from monitor.core.storage.db import make_engine, migrate, session_factory, transaction
    from monitor.core.storage.schema import Post, Score

    now = datetime.now(timezone.utc).replace(microsecond=0)
    config = parse_config({"detection": {"warmup_hours": 0}, "alerts": {"console": True},
                           "brands": [{"name": "Acme", "terms": ["acme"]}]}, env={})
    with fresh_database(db) as url:
        engine = make_engine(url)
        migrate(engine)
        sessions = session_factory(engine)
        bulk_history(engine, 20_000)  # some history for the baseline
        if negatives:
            bulk_history(engine, negatives, negative_since=now - timedelta(hours=1))
        with transaction(sessions) as session:  # buckets for what was bulk-inserted
            session.execute(text("DELETE FROM buckets"))
            rows = session.execute(text("SELECT posts.id FROM posts")).scalars().all()
            for start in range(0, len(rows), 5000):
                ids = rows[start:start + 5000]
                pairs = list(session.execute(
                    __import__("sqlalchemy").select(Post, Score).join(Score, Score.post_id == Post.id)
                    .where(Post.id.in_(ids))).tuples())
                record_batch(session, pairs)
                session.expunge_all()
        # What a tick reads, besides its time: statements sent, and the rows of the viral read
        # (the posts handed to the viral check), which must not grow with the hour's negatives.
        statements, viral_rows = [0], [0]
        event.listen(engine, "before_cursor_execute", lambda *_: statements.__setitem__(0, statements[0] + 1))
        check = incidents.check_viral_posts

        def counted_check(posts: Any, *args: Any) -> Any:
            viral_rows[0] += len(posts)
            return check(posts, *args)

        incidents.check_viral_posts = counted_check  # type: ignore[assignment]
        times, per_tick = [], []
        for rep in range(reps):
            clock = SimulatedClock(now + timedelta(seconds=rep))
            statements[0] = viral_rows[0] = 0
            t = time.perf_counter()
            detect_incidents(sessions, config, clock)
            times.append(time.perf_counter() - t)
            per_tick.append((statements[0], viral_rows[0]))
        incidents.check_viral_posts = check  # type: ignore[assignment]
        engine.dispose()
    return {"bench": "detect_tick", "db": engine.dialect.name, "negative_posts_last_hour": negatives,
            "first_tick_s": round(times[0], 3), "tick_s_median": round(statistics.median(times[1:] or times), 3),
            "statements_per_tick": per_tick[-1][0], "viral_rows_read": per_tick[-1][1], "reps": reps,
            "load_avg": os.getloadavg()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", default="sqlite", help="'sqlite' (a temp file) or a PostgreSQL server URL")
    ap.add_argument("--stored", type=int, nargs="*", default=[10_000])
    ap.add_argument("--detect", type=int, nargs="*", default=[])
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args(argv)
    print(json.dumps({"cpu": cpu_model(), "cores": os.cpu_count(), "load_avg": os.getloadavg()}))
    for stored in a.stored:
        print(json.dumps(bench_scoring(a.db, stored, a.reps)), flush=True)
    for negatives in a.detect:
        print(json.dumps(bench_detect(a.db, negatives, a.reps)), flush=True)
    print(json.dumps({"load_avg_after": os.getloadavg()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
