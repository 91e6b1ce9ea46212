"""Three `flarewatch run` replicas on one PostgreSQL database, one of them killed with kill -9.

Posts are pushed through every replica's webhook at once (each batch twice, to two replicas), the
replica holding the brand's detection lease is killed mid-work, and the survivors must: take over
its leases within the lease time, score and count every post exactly once, open the incident once
and deliver each alert exactly once (a local webhook receiver counts them by Idempotency-Key).
Short leases (1.5 s) keep it quick.
"""
from __future__ import annotations

import os
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from monitor.detection import aggregates
from monitor.core.storage.db import make_engine, session_factory
from monitor.core.storage.schema import Incident, OutboxMessage, Post, Score
from tests.replica_support import (AlertReceiver, Cluster, children, lease_holder, push, replica_of, running,
                                   wait_for)

pytestmark = pytest.mark.postgres

COMPLAINTS = ["charged me twice and support ignores me", "app is broken again, terrible service",
              "worst delivery ever, my order is lost", "refund still missing, awful support"]


def batches(count: int, size: int, offset: int) -> list[list[dict[str, object]]]:
    now = datetime.now(timezone.utc)
    posts = [{"id": f"p{offset + i}", "author": f"user{offset + i}", "lang": "en",
              "created_at": (now - timedelta(seconds=(count - i) % 50)).isoformat(),
              "text": f"Acme {COMPLAINTS[i % 4]} (order {offset + i})"} for i in range(count)]
    return [posts[i:i + size] for i in range(0, count, size)]


def test_replicas_share_the_work_and_survive_a_kill_9(db_url: str, tmp_path: Path) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("replicas share a PostgreSQL database; SQLite refuses a second daemon (tests/test_leases.py)")
    cluster = Cluster(tmp_path, db_url, AlertReceiver())
    try:
        for name in ("a", "b", "c"):
            cluster.start(name)
        cluster.wait_ready()
        holder_id = wait_for(lambda: lease_holder(cluster, "detect:Acme"), 30, "a detection lease holder", cluster)
        doomed = replica_of(cluster, holder_id)
        survivors = [r for r in cluster.replicas if r is not doomed]

        def push_twice(args: tuple[int, list[dict[str, object]]]) -> list[int]:
            index, batch = args
            first, second = cluster.replicas[index % 3], cluster.replicas[(index + 1) % 3]
            return [push(first, batch).status_code, push(second, batch).status_code]

        with ThreadPoolExecutor(6) as pool:  # every batch pushed twice, to two replicas, concurrently
            statuses = [s for pair in pool.map(push_twice, enumerate(batches(120, 20, 0))) for s in pair]
        assert statuses == [200] * len(statuses)
        killed_at = time.monotonic()
        cluster.kill9(doomed)  # mid-work: scoring of those posts is under way
        with ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(lambda b: push(survivors[len(b) % 2], b).status_code, batches(60, 15, 1000)))
        assert statuses == [200] * len(statuses)

        new_holder = wait_for(lambda: (h := lease_holder(cluster, "detect:Acme")) and h != holder_id and h,
                              30, "a survivor to take the detection lease", cluster)
        takeover_s = time.monotonic() - killed_at
        assert replica_of(cluster, new_holder) in survivors
        assert takeover_s < 1.5 + 0.5 + 5, takeover_s  # lease + one detect tick, with slack for a loaded machine

        engine = make_engine(db_url)
        sessions = session_factory(engine)

        def settled() -> bool:
            with sessions() as s:
                scored = s.scalar(select(func.count(Score.id)))
                posts = s.scalar(select(func.count(Post.id)))
                unsent = s.scalar(select(func.count(OutboxMessage.id)).where(OutboxMessage.status != "sent"))
                outbox = s.scalar(select(func.count(OutboxMessage.id)))
            return posts == 180 and scored == 180 and outbox > 0 and unsent == 0

        wait_for(settled, 120, "every post scored and every alert sent", cluster)
        time.sleep(2)  # a second send, if any replica were to make one, would land now
        with sessions() as s:
            assert s.scalar(select(func.count(func.distinct(Score.post_id)))) == 180
            assert s.scalar(select(func.count(Post.id)).where(Post.pending)) == 0
            stored, recount = aggregates.stored(s, "Acme"), aggregates.recount(s, "Acme")
            incidents = list(s.scalars(select(Incident)))
            keys = list(s.scalars(select(OutboxMessage.idempotency_key)))
        engine.dispose()
        assert [(b.start, b.volume, b.negative) for b in stored] == [(b.start, b.volume, b.negative) for b in recount]
        assert sum(b.volume for b in stored) == 180
        assert len(incidents) == 1, "the incident opened once"
        assert cluster.hook.keys == {key: 1 for key in keys}, "each alert delivered exactly once"
        health = survivors[0].health()["daemon"]
        alive = {r["id"] for r in health["replicas"] if r["alive"]}
        assert holder_id not in alive and len(alive) == 2
    finally:
        cluster.stop_all()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the worker through /proc")
def test_a_score_worker_exits_when_its_daemon_is_killed_9(db_url: str, tmp_path: Path) -> None:
    """kill -9 of the daemon alone (not its process group): its score worker must not live on, scoring
    (and holding a model's memory) for a replica that is gone, and is not stopped by any later stop.
    Its model threads sleep while they wait (OMP_WAIT_POLICY=PASSIVE), so they never spin on
    cores that ingest and the database need."""
    if not db_url.startswith("postgresql"):
        pytest.skip("score workers are processes on PostgreSQL (a thread of the daemon on SQLite)")
    cluster = Cluster(tmp_path, db_url, AlertReceiver())
    try:
        replica = cluster.start("a")
        cluster.wait_ready()
        workers = wait_for(lambda: [pid for pid, cmd in children(replica.proc.pid).items() if "spawn_main" in cmd],
                           30, "the score worker process", cluster)
        environ = Path(f"/proc/{workers[0]}/environ").read_bytes().split(b"\0")
        assert b"OMP_WAIT_POLICY=PASSIVE" in environ or "OMP_WAIT_POLICY" in os.environ  # its threads never spin
        assert push(replica, batches(20, 20, 0)[0]).status_code == 200
        engine = make_engine(db_url)
        with session_factory(engine)() as s:  # scored by the worker: it is past its start, in its loop
            wait_for(lambda: s.scalar(select(func.count(Score.id))) == 20, 120, "the worker to score", cluster)
        engine.dispose()
        descendants = list(children(replica.proc.pid))
        os.kill(replica.proc.pid, signal.SIGKILL)
        replica.proc.wait(10)
        killed_at = time.monotonic()
        while any(running(pid) for pid in descendants) and time.monotonic() - killed_at < 5:
            time.sleep(0.1)
        left = [pid for pid in descendants if running(pid)]
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        assert workers and not left, f"still running {time.monotonic() - killed_at:.1f}s after the kill: {left}"
    finally:
        cluster.stop_all()
