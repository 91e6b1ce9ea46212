"""The claim queue and its pages under load: how fast the queue answers with many flagged posts,
and how many contested claims per second the database settles.

    python bench/bench_queue.py                      # 5,000 flagged posts, SQLite in a temp dir
    python bench/bench_queue.py --flagged 20000 --db postgresql://postgres@127.0.0.1:5432/postgres

Reports p50/p95 latency of `GET /api/queue` (a page of 50, filtered and not), of the live-refresh
fragment `/queue/rows` (100 rows rendered), and claims/s with 8 threads racing for the same posts
(exactly one winner each; the bench checks it). On PostgreSQL it creates and drops a database of
its own on the given server; the named database is only used to connect.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import create_engine, func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from monitor.core import accounts, queue  # noqa: E402
from monitor.core.clock import SimulatedClock  # noqa: E402
from monitor.config import parse_config  # noqa: E402
from monitor.core.ingest import content_hash  # noqa: E402
from monitor.core.storage.db import make_engine, migrate, session_factory, transaction  # noqa: E402
from monitor.core.storage.schema import FlaggedPost, Incident, Post, Score  # noqa: E402
from monitor.web.app import create_app  # noqa: E402

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


def seed(sessions, flagged: int) -> list[int]:  # noqa: ANN001
    rng = random.Random(7)
    ids: list[int] = []
    with transaction(sessions) as session:
        incidents = []
        for brand in ("acme", "globex"):
            incident = Incident(brand=brand, status="open", severity=rng.randint(1, 5), title=f"{brand} outage",
                                started_at=T0, opened_at=T0, updated_at=T0, escalation_level=0)
            session.add(incident)
            incidents.append(incident)
        session.flush()
        for i in range(flagged):
            brand = "acme" if i % 3 else "globex"
            at = T0 + timedelta(seconds=i)
            text_ = f"{brand} order {i} still not delivered, support never answers"
            post = Post(source=f"{brand}-src", external_id=str(i), brand=brand, author=f"user{i}",
                        author_followers=rng.randint(0, 100_000), text=text_, lang=rng.choice(["en", "en", "zh"]),
                        created_at=at, fetched_at=at, likes=0, reposts=0, replies=0, content_hash=content_hash(text_))
            session.add(post)
            session.flush()
            session.add(Score(post_id=post.id, model="bench", label="negative", confidence=0.9, sentiment=-0.7,
                              lang=post.lang, scored_at=at))
            incident = incidents[0 if brand == "acme" else 1] if i % 4 == 0 else None
            queue.flag_post(session, post_id=post.id, brand=brand, reason="negative", urgency=rng.random() * 10,
                            incident_id=incident.id if incident else None, now=at)
            ids.append(post.id)
    return ids


def timed(client: TestClient, path: str, headers: dict[str, str], rounds: int) -> tuple[float, float]:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        response = client.get(path, headers=headers)
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.text
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flagged", type=int, default=5000)
    parser.add_argument("--db", help="database URL (default: SQLite in a temp dir)")
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--races", type=int, default=200, help="posts contested by 8 threads each")
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="fw-bench-queue-")
    url, throwaway = args.db or f"sqlite:///{tmp}/bench.db", None
    if make_url(url).get_backend_name() == "postgresql":  # a database of its own, dropped at the end
        throwaway = f"flarewatch_bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(make_url(url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{throwaway}"'))
        url = make_url(url).set(database=throwaway).render_as_string(hide_password=False)
    engine = make_engine(url)
    migrate(engine)
    sessions = session_factory(engine)
    started = time.perf_counter()
    ids = seed(sessions, args.flagged)
    print(f"seeded {len(ids)} flagged posts in {time.perf_counter() - started:.1f}s ({engine.dialect.name})")

    config = parse_config({"web": {"session_secret": "b" * 32}}, env={})
    clock = SimulatedClock(T0 + timedelta(days=1))
    with transaction(sessions) as session:
        user = accounts.create_user(session, "bench", "agent", "bench-password", T0)
        token = accounts.issue_token(session, user, "bench", T0)
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(config, sessions, clock)) as client:
        for label, path in (("GET /api/queue (50)", "/api/queue?limit=50"),
                            ("GET /api/queue?brand&severity", "/api/queue?brand=acme&severity=1&limit=50"),
                            ("GET /api/queue deep page", f"/api/queue?limit=50&offset={max(0, args.flagged - 60)}")):
            p50, p95 = timed(client, path, headers, args.rounds)
            print(f"{label:34s} p50 {p50:6.1f} ms   p95 {p95:6.1f} ms")
        page = client.get("/login")
        csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        client.post("/login", data={"username": "bench", "password": "bench-password", "csrf_token": csrf})
        p50, p95 = timed(client, "/queue/rows", {}, args.rounds)
        print(f"{'GET /queue/rows (100 rendered)':34s} p50 {p50:6.1f} ms   p95 {p95:6.1f} ms")

    contested = ids[: args.races]
    wins: dict[int, list[str]] = {post_id: [] for post_id in contested}
    barrier = threading.Barrier(8)

    def racer(name: str) -> None:
        barrier.wait()
        for post_id in contested:
            with transaction(sessions) as session:
                if queue.claim(session, post_id, name, clock.now(), 30):
                    wins[post_id].append(name)

    threads = [threading.Thread(target=racer, args=(f"agent{i}",)) for i in range(8)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    attempts = 8 * len(contested)
    assert all(len(w) == 1 for w in wins.values()), "a post was won twice or never"
    with sessions() as session:
        claimed = session.scalar(select(func.count()).select_from(FlaggedPost).where(FlaggedPost.state == "claimed"))
    assert claimed == len(contested)
    print(f"contested claims: {attempts} attempts on {len(contested)} posts by 8 threads in {elapsed:.2f}s "
          f"({attempts / elapsed:.0f} attempts/s), exactly one winner per post")
    engine.dispose()
    if throwaway:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{throwaway}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
