"""Replicas on one PostgreSQL database: throughput, scorer scaling, lag, failover (issue 15).

    python bench/bench_replicas.py --db postgresql://postgres@127.0.0.1:5432/test throughput --posts 3000
    python bench/bench_replicas.py --db ... scorers --posts 3000          # 1 vs 2 scorer replicas
    python bench/bench_replicas.py --db ... lag --rate 100 --seconds 40    # steady webhook load
    python bench/bench_replicas.py --db ... failover                       # kill -9 the detection holder

Every run starts real `flarewatch run` replicas in subprocesses (tests/replica_support.py) on a
fresh database and pushes posts through their ingest webhooks with httpx, as a sender would.

* throughput: one replica; 4 clients push `--posts` posts as fast as they are accepted; reports
  the ingest rate, the end-to-end rate (first post in -> last post scored and counted) and the
  bare model's posts/s measured in this process on the same texts, same thread count.
* scorers: posts stored first (ingest only), then 1 or 2 replicas with only the score role (one
  scoring thread each) drain them; posts/s for each.
* lag: one replica under a paced load; lag = score time - arrival time per post (p50/p95/max).
* failover: two replicas, a crisis (background then a surge of complaints) pushed through the
  webhook; the replica holding the brand's detection lease is killed with kill -9 mid-surge;
  reports the takeover time, the delay from the surge to the first alert and alerts per key.

This machine is shared (the load average is printed with every result): numbers are noisy;
repeat runs and compare within one run.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_pending import cpu_model, fresh_database  # noqa: E402
from bench.bench_scoring import synthetic_tweets  # noqa: E402
from tests.replica_support import AlertReceiver, Cluster, lease_holder, push, replica_of, wait_for  # noqa: E402

NEGATIVE = ["Acme charged me twice and support ignores me", "Acme app is broken again, terrible service",
            "worst Acme delivery ever, my order is lost", "Acme refund still missing, awful support"]


def posts_for(texts: list[str], prefix: str, at: datetime | None = None) -> list[dict[str, Any]]:
    at = at or datetime.now(timezone.utc)
    return [{"id": f"{prefix}{i}", "author": f"user{i % 997}", "lang": "en", "created_at": at.isoformat(),
             "text": f"Acme {text} #{prefix}{i}"} for i, text in enumerate(texts)]


def counts(url: str) -> dict[str, Any]:
    from sqlalchemy import func, select

    from monitor.core.storage.db import make_engine, session_factory
    from monitor.core.storage.schema import Post, Score

    engine = make_engine(url)
    with session_factory(engine)() as s:
        out = {"posts": s.scalar(select(func.count(Post.id))), "scored": s.scalar(select(func.count(Score.id))),
               "first_in": s.scalar(select(func.min(Post.fetched_at))),
               "last_scored": s.scalar(select(func.max(Score.scored_at)))}
    engine.dispose()
    return out


def lags(url: str) -> list[float]:
    from sqlalchemy import select

    from monitor.core.storage.db import make_engine, session_factory
    from monitor.core.storage.schema import Post, Score

    engine = make_engine(url)
    with session_factory(engine)() as s:
        rows = s.execute(select(Post.fetched_at, Score.scored_at).join(Score, Score.post_id == Post.id)).all()
    engine.dispose()
    return sorted((scored - fetched).total_seconds() for fetched, scored in rows)


def bare_model(texts: list[str], threads: int, batch: int) -> float:
    import torch

    from models import ModelSettings, load_scorer

    torch.set_num_threads(threads)
    scorer = load_scorer(ModelSettings(threads=threads, batch_size=batch, languages=["*"]))
    scorer.score(texts[:128])
    t = time.perf_counter()
    scorer.score(texts)
    return len(texts) / (time.perf_counter() - t)


def push_all(cluster: Cluster, posts: list[dict[str, Any]], clients: int, batch: int = 50) -> float:
    batches = [posts[i:i + batch] for i in range(0, len(posts), batch)]
    live = [r for r in cluster.replicas if r.alive() and "web" in r.config.read_text()]
    t = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        statuses = list(pool.map(lambda ib: push(live[ib[0] % len(live)], ib[1]).status_code, enumerate(batches)))
    assert set(statuses) == {200}, statuses
    return time.perf_counter() - t


def run_throughput(db: str, n: int, threads: int) -> dict[str, Any]:
    texts = synthetic_tweets(n, seed=7)
    with fresh_database(db) as url, tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(Path(tmp), url, AlertReceiver())
        try:
            cluster.start("a", threads=threads)
            cluster.wait_ready()
            wait_for(lambda: "score" in cluster.replicas[0].health()["daemon"]["jobs"], 120, "scorer up", cluster)
            ingest_s = push_all(cluster, posts_for(texts, "t"), clients=4)
            wait_for(lambda: counts(url)["scored"] >= n, 900, "all scored", cluster)
            c = counts(url)
        finally:
            cluster.stop_all()
    e2e_s = (c["last_scored"] - c["first_in"]).total_seconds()
    bare = bare_model(texts[:1024], threads, 64)
    return {"bench": "throughput", "posts": n, "model_threads": threads, "ingest_posts_per_s": round(n / ingest_s, 1),
            "end_to_end_posts_per_s": round(n / e2e_s, 1), "bare_model_posts_per_s": round(bare, 1),
            "ratio": round(n / e2e_s / bare, 3)}


def run_scorers(db: str, n: int, replicas: int) -> dict[str, Any]:
    texts = synthetic_tweets(n, seed=11)
    with fresh_database(db) as url, tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(Path(tmp), url, AlertReceiver())
        try:
            cluster.start("ingest", roles=["web"])
            cluster.wait_ready()
            push_all(cluster, posts_for(texts, "s"), clients=4)
            for i in range(replicas):
                cluster.start(f"scorer{i}", roles=["score"], threads=1)
            t0 = time.monotonic()
            wait_for(lambda: counts(url)["scored"] >= 1, 300, "first score", cluster)
            t1 = time.monotonic()
            wait_for(lambda: counts(url)["scored"] >= n, 900, "all scored", cluster)
            t2 = time.monotonic()
        finally:
            cluster.stop_all()
    return {"bench": "scorers", "replicas": replicas, "posts": n, "startup_s": round(t1 - t0, 1),
            "posts_per_s": round(n / (t2 - t1), 1)}


def run_lag(db: str, rate: float, seconds: float, threads: int) -> dict[str, Any]:
    total = int(rate * seconds)
    texts = synthetic_tweets(total, seed=13)
    with fresh_database(db) as url, tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(Path(tmp), url, AlertReceiver())
        try:
            replica = cluster.start("a", threads=threads)
            cluster.wait_ready()
            wait_for(lambda: "score" in replica.health()["daemon"]["jobs"], 120, "scorer up", cluster)
            batch = max(int(rate / 10), 1)  # ten pushes a second
            start = time.monotonic()
            for i in range(0, total, batch):
                due = start + i / rate
                time.sleep(max(due - time.monotonic(), 0))
                assert push(replica, posts_for(texts[i:i + batch], f"l{i}-")).status_code == 200
            wait_for(lambda: counts(url)["scored"] >= total, 600, "all scored", cluster)
            values = lags(url)
        finally:
            cluster.stop_all()
    q = statistics.quantiles(values, n=100)
    return {"bench": "lag", "rate_posts_per_s": rate, "seconds": seconds, "posts": total, "model_threads": threads,
            "lag_p50_s": round(q[49], 2), "lag_p95_s": round(q[94], 2), "lag_max_s": round(values[-1], 2)}


def run_failover(db: str) -> dict[str, Any]:
    with fresh_database(db) as url, tempfile.TemporaryDirectory() as tmp:
        hook = AlertReceiver()
        cluster = Cluster(Path(tmp), url, hook)
        try:
            for name in ("a", "b"):
                cluster.start(name, lease_seconds=10)
            cluster.wait_ready()
            holder = wait_for(lambda: lease_holder(cluster, "detect:Acme"), 60, "detect lease", cluster)
            background = synthetic_tweets(200, seed=5)
            push_all(cluster, posts_for(background, "bg", datetime.now(timezone.utc) - timedelta(minutes=30)), 2)
            surge_started = time.time()
            killed_at: float | None = None
            for step in range(12):  # a minute of complaints, growing
                texts = [NEGATIVE[i % 4] + f" ({step}-{i})" for i in range(10 + 10 * step)]
                push_all(cluster, posts_for(texts, f"c{step}-"), 2, batch=25)
                if step == 3 and killed_at is None:  # mid-crisis: the detection holder dies
                    doomed = replica_of(cluster, holder)
                    cluster.kill9(doomed)
                    killed_at = time.time()
                time.sleep(5)
            new_holder = wait_for(lambda: (h := lease_holder(cluster, "detect:Acme")) != holder and h, 60,
                                  "takeover", cluster)
            wait_for(lambda: hook.keys, 120, "an alert", cluster)
            time.sleep(10)
        finally:
            cluster.stop_all()
        first_alert = min(hook.first_at.values()) if hook.first_at else None
        levels = [b.get("event", {}).get("kind") for b in hook.bodies]
    return {"bench": "failover", "killed_holder": holder, "new_holder": new_holder, "lease_seconds": 10,
            "first_alert_after_surge_s": round(first_alert - surge_started, 1) if first_alert else None,
            "first_alert_after_kill_s": round(first_alert - killed_at, 1) if first_alert and killed_at else None,
            "alerts": len(hook.bodies), "distinct_keys": len(hook.keys), "max_per_key": max(hook.keys.values()),
            "event_kinds": levels}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", required=True, help="PostgreSQL server URL (a fresh database is made per run)")
    sub = ap.add_subparsers(dest="what", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--posts", type=int, default=3000)
    t.add_argument("--threads", type=int, default=2)
    s = sub.add_parser("scorers")
    s.add_argument("--posts", type=int, default=3000)
    lag = sub.add_parser("lag")
    lag.add_argument("--rate", type=float, default=100)
    lag.add_argument("--seconds", type=float, default=40)
    lag.add_argument("--threads", type=int, default=2)
    sub.add_parser("failover")
    a = ap.parse_args(argv)
    print(json.dumps({"cpu": cpu_model(), "cores": os.cpu_count(), "load_avg": os.getloadavg()}), flush=True)
    if a.what == "throughput":
        results = [run_throughput(a.db, a.posts, a.threads)]
    elif a.what == "scorers":
        results = [run_scorers(a.db, a.posts, 1), run_scorers(a.db, a.posts, 2)]
    elif a.what == "lag":
        results = [run_lag(a.db, a.rate, a.seconds, a.threads)]
    else:
        results = [run_failover(a.db)]
    for result in results:
        print(json.dumps({**result, "load_avg": os.getloadavg()}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
