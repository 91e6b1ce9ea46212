"""Replicas on one PostgreSQL database: throughput, scorer scaling, lag, failover (issue 15).

    python bench/bench_replicas.py --db postgresql://postgres@127.0.0.1:5432/test throughput --posts 3000
    python bench/bench_replicas.py --db ... scorers --posts 3000          # 1 vs 2 scorer replicas
    python bench/bench_replicas.py --db ... lag --rate 100 --seconds 40    # steady webhook load
    python bench/bench_replicas.py --db ... failover                       # kill -9 the detection holder
    (options before the mode: --timeout 900 bounds the whole run, --detect-interval 10)

Every run starts real `flarewatch run` replicas in subprocesses (tests/replica_support.py) on a
fresh database and pushes posts through their ingest webhooks with httpx, as a sender would.
Replicas run with the shipped detect interval (10 s) and lease (20 s), not the tests' fast pace.

* throughput: one replica; one warm-up post is pushed and scored first (the worker has loaded its
  model), then 4 clients push `--posts` posts as fast as they are accepted; reports the ingest
  rate, the end-to-end rate (first post in -> last post scored and counted), the bare model's
  posts/s in this process on the texts that were pushed, with the same threads and the same
  OpenMP wait policy as the worker (before and after the cluster; their mean is the ratio's
  denominator), and CPU milliseconds per post of every process involved: the daemon (ingest,
  detection, web), its score worker, this database's PostgreSQL backends, this bench (the push
  clients and its polling), and the bare model. CPU time, unlike wall time, says where the work
  went on a machine shared with others. The bare model on the bench's raw texts (without the
  "Acme ... #tN" a pushed post carries: about 6 tokens fewer) is shown too, as earlier runs used it.
* scorers: posts stored first (ingest only), then 1 or 2 replicas with only the score role (one
  scoring thread each) drain them, timed from when every worker reports in /healthz; with the
  workers' CPU per post on this full backlog (compare with throughput's worker, which scores
  posts as they arrive).
* lag: one replica under a paced load, after the warm-up; lag = score time - arrival time per
  post (p50/p95/max), and the CPU per post of each process while posts trickle in (small batches).
* failover: two replicas, a crisis (background then a surge of complaints) pushed through the
  webhook; the replica holding the brand's detection lease is killed with kill -9 mid-surge;
  reports the takeover time, the delays from the surge and from the kill to the first alert,
  and the alerts delivered per level and per key (the aim: one each).

This machine is shared (the load average is printed with every result): numbers are noisy;
repeat runs and compare within one run.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The bare model waits for work the way the daemon's score workers do (monitor/daemon.py sets
# PASSIVE for them): spinning threads count as CPU, so a spinning bare model is not comparable.
# Read by OpenMP when torch loads, which is later, in bare_model().
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from bench.bench_pending import cpu_model, fresh_database  # noqa: E402
from bench.bench_scoring import synthetic_tweets  # noqa: E402
from tests.replica_support import (  # noqa: E402
    TOKEN, AlertReceiver, Cluster, Replica, children, cpu_seconds, lease_holder, push, replica_of, wait_for)

NEGATIVE = ["Acme charged me twice and support ignores me", "Acme app is broken again, terrible service",
            "worst Acme delivery ever, my order is lost", "Acme refund still missing, awful support"]


def posts_for(texts: list[str], prefix: str, at: datetime | None = None) -> list[dict[str, Any]]:
    at = at or datetime.now(timezone.utc)
    return [{"id": f"{prefix}{i}", "author": f"user{i % 997}", "lang": "en", "created_at": at.isoformat(),
             "text": f"Acme {text} #{prefix}{i}"} for i, text in enumerate(texts)]


WARMUP = "warmup"
DETECT_INTERVAL = 10.0  # the default (tests use 0.5 s): a bench should not pay for a test's pace
LEASE_SECONDS = 20.0  # the default; with leases as long as the detect interval they would lapse between ticks


def warm_up(cluster: Cluster, url: str) -> None:
    """Push one post and wait until it is scored: the score worker has loaded its model and is in
    its loop (the daemon's own "score" job is its supervisor, up long before). Timing starts after."""
    live = next(r for r in cluster.replicas if r.alive() and "web" in r.config.read_text())
    assert push(live, [{"id": WARMUP, "author": "warm", "lang": "en", "text": "Acme warm-up post",
                        "created_at": datetime.now(timezone.utc).isoformat()}]).status_code == 200
    wait_for(lambda: counts(url)["warm"], 300, "the score worker's first post", cluster)


_ENGINES: dict[str, Any] = {}


def _engine(url: str) -> Any:
    """One engine per run's database for the bench's polling: a new engine and connection every
    0.2 s cost this process about 1 CPU-s per 10 s of waiting, on the cores the daemon needs."""
    from monitor.core.storage.db import make_engine

    if url not in _ENGINES:
        _ENGINES[url] = make_engine(url)
    return _ENGINES[url]


def forget_engine(url: str) -> None:
    engine = _ENGINES.pop(url, None)
    if engine is not None:
        engine.dispose()


def counts(url: str) -> dict[str, Any]:
    """Counts over the measured posts (the warm-up post left out)."""
    from sqlalchemy import func, select

    from monitor.core.storage.db import session_factory
    from monitor.core.storage.schema import Post, Score

    engine = _engine(url)
    measured = Post.external_id != WARMUP
    with session_factory(engine)() as s:
        out = {"posts": s.scalar(select(func.count(Post.id)).where(measured)),
               "scored": s.scalar(select(func.count(Score.id)).join(Post, Post.id == Score.post_id).where(measured)),
               "pending": s.scalar(select(func.count(Post.id)).where(Post.pending)),
               "warm": s.scalar(select(func.count(Score.id)).join(Post, Post.id == Score.post_id)
                                .where(Post.external_id == WARMUP)),
               "first_in": s.scalar(select(func.min(Post.fetched_at)).where(measured)),
               "last_scored": s.scalar(select(func.max(Score.scored_at)))}
    return out


def lags(url: str) -> list[float]:
    from sqlalchemy import select

    from monitor.core.storage.db import session_factory
    from monitor.core.storage.schema import Post, Score

    with session_factory(_engine(url))() as s:
        rows = s.execute(select(Post.fetched_at, Score.scored_at).join(Score, Score.post_id == Post.id)
                         .where(Post.external_id != WARMUP)).all()
    return sorted((scored - fetched).total_seconds() for fetched, scored in rows)


def bare_model(texts: list[str], threads: int, batch: int = 64, call: int = 1024) -> dict[str, float]:
    """The model alone, in this process: `Scorer.score` on `texts` in calls of `call` texts, with the
    same threads and batch, told the language as the pipeline is (the pushed posts say "en").
    Returns posts/s (wall) and CPU milliseconds per post (this process, all threads)."""
    import torch

    torch.set_num_threads(threads)
    scorer = _bare_scorer(threads, batch)
    scorer.score(texts[:128], langs=["en"] * 128)
    t, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(texts), call):
        part = texts[start:start + call]
        scorer.score(part, langs=["en"] * len(part))
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    return {"posts_per_s": len(texts) / wall, "cpu_ms_per_post": 1000 * cpu / len(texts)}


_SCORERS: dict[tuple[int, int], Any] = {}


def _bare_scorer(threads: int, batch: int) -> Any:
    from models import ModelSettings, load_scorer

    key = (threads, batch)
    if key not in _SCORERS:
        _SCORERS[key] = load_scorer(ModelSettings(threads=threads, batch_size=batch, languages=["*"]))
    return _SCORERS[key]


def push_all(cluster: Cluster, posts: list[dict[str, Any]], clients: int, batch: int = 50) -> float:
    """Push `posts` in batches from `clients` threads, each with its own keep-alive connection (as
    a busy sender would hold one; a new connection per batch costs both sides CPU)."""
    batches = [posts[i:i + batch] for i in range(0, len(posts), batch)]
    live = [r for r in cluster.replicas if r.alive() and "web" in r.config.read_text()]
    local = threading.local()
    opened: list[httpx.Client] = []

    def send(item: tuple[int, list[dict[str, Any]]]) -> int:
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=30, headers={"Authorization": f"Bearer {TOKEN}"})
            opened.append(local.client)
        replica = live[item[0] % len(live)]
        return local.client.post(f"{replica.base}/api/ingest/acme-push", json=item[1]).status_code

    t = time.perf_counter()
    try:
        with ThreadPoolExecutor(clients) as pool:
            statuses = list(pool.map(send, enumerate(batches)))
    finally:
        for client in opened:
            client.close()
    assert set(statuses) == {200}, statuses
    return time.perf_counter() - t


def run_throughput(db: str, n: int, threads: int) -> dict[str, Any]:
    raw = synthetic_tweets(n, seed=7)
    posts = posts_for(raw, "t")
    texts = [p["text"] for p in posts]  # what the worker scores
    sample = texts[:1024]
    bare_before = bare_model(sample, threads)  # before and after the cluster: the machine's load drifts
    with fresh_database(db) as url, tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(Path(tmp), url, AlertReceiver())
        try:
            replica = cluster.start("a", threads=threads, detect_interval=DETECT_INTERVAL)
            cluster.wait_ready()
            warm_up(cluster, url)
            cpu_before, ticks_before = cpu_of(replica, url), _score_runs(replica)
            ingest_s = push_all(cluster, posts, clients=4)
            wait_for(lambda: counts(url)["scored"] >= n, 900, "all scored", cluster)
            c = counts(url)
            cpu = cpu_since(cpu_before, cpu_of(replica, url))
            ticks = _score_runs(replica) - ticks_before
        finally:
            cluster.stop_all()
            forget_engine(url)
    e2e_s = (c["last_scored"] - c["first_in"]).total_seconds()
    bare_after = bare_model(sample, threads)
    bare = (bare_before["posts_per_s"] + bare_after["posts_per_s"]) / 2
    bare_raw = bare_model(raw[:1024], threads)
    per_post = {k: round(1000 * v / n, 2) for k, v in cpu.items()}
    return {"bench": "throughput", "posts": n, "model_threads": threads,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "ingest_posts_per_s": round(n / ingest_s, 1),
            "end_to_end_posts_per_s": round(n / e2e_s, 1), "bare_model_posts_per_s": round(bare, 1),
            "bare_before_after": [round(bare_before["posts_per_s"], 1), round(bare_after["posts_per_s"], 1)],
            "ratio": round(n / e2e_s / bare, 3),
            "score_ticks": ticks, "posts_per_tick": round(n / ticks, 1) if ticks else None,
            # where the work went: CPU of each process over the run (from the first push to the last
            # score), per post, against the bare model's on the same texts; the bare model on the
            # shorter raw texts is what runs before 2026-12-02 05:00 compared with
            "cpu_ms_per_post": {**per_post,
                                "bare_model": round((bare_before["cpu_ms_per_post"] + bare_after["cpu_ms_per_post"]) / 2, 2),
                                "bare_model_raw_texts": round(bare_raw["cpu_ms_per_post"], 2)},
            "cpu_s": {k: round(v, 1) for k, v in cpu.items()},
            "bare_model_raw_texts_posts_per_s": round(bare_raw["posts_per_s"], 1)}


def _score_runs(replica: Replica) -> int:
    """The score worker's ticks so far (its "score" job in /healthz; reported about once a second)."""
    try:
        return int(replica.health()["daemon"]["jobs"]["score"]["runs"])
    except (httpx.HTTPError, KeyError, ValueError):
        return 0


def cpu_of(replica: Replica, url: str) -> dict[str, Any]:
    """CPU seconds so far of the daemon, its score worker, the PostgreSQL backends serving this
    run's database (found by their process titles, per pid; the server's shared processes, WAL
    writer and checkpointer, are left out) and this bench process (push clients, polling)."""
    workers = [pid for pid, cmd in children(replica.proc.pid).items() if "spawn_main" in cmd]
    return {"daemon": cpu_seconds(replica.proc.pid), "score_worker": sum(cpu_seconds(p) for p in workers),
            "postgres_backends": {p: cpu_seconds(p) for p in _backends(url)}, "bench": time.process_time()}


def cpu_since(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
    """CPU seconds between two `cpu_of` readings (a backend new since `before` counts from 0; one
    gone by `after`, e.g. the bench's own short polling connections, is not counted)."""
    out = {k: after[k] - before[k] for k in after if k != "postgres_backends"}
    out["postgres_backends"] = sum(v - before["postgres_backends"].get(p, 0.0)
                                   for p, v in after["postgres_backends"].items())
    return out


def _backends(url: str) -> list[int]:
    """PostgreSQL backends of `url`'s database: their title is "postgres: [CLUSTER:] USER DATABASE HOST ..."
    (the database is made per run with a random name, so the name alone picks its backends)."""
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").split()
            except OSError:
                continue
            if title[:1] == ["postgres:"] and name in title[1:5]:
                found.append(int(entry.name))
    return found


def run_scorers(db: str, n: int, replicas: int) -> dict[str, Any]:
    texts = synthetic_tweets(n, seed=11)
    with fresh_database(db) as url, tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(Path(tmp), url, AlertReceiver())
        try:
            cluster.start("ingest", roles=["web"], detect_interval=DETECT_INTERVAL)
            cluster.wait_ready()
            push_all(cluster, posts_for(texts, "s"), clients=4)
            scorers = [cluster.start(f"scorer{i}", roles=["score", "web"], threads=1, detect_interval=DETECT_INTERVAL)
                       for i in range(replicas)]
            t0 = time.monotonic()
            # timed from the moment every scorer's worker is in its loop (its "score" job shows in
            # /healthz) to the last post, over the posts left then: a later start does not count
            wait_for(lambda: all(_scoring(r) for r in scorers), 300, "every score worker up", cluster)
            t1, start = time.monotonic(), counts(url)["scored"]
            cpu_before = [cpu_of(r, url) for r in scorers]
            wait_for(lambda: counts(url)["scored"] >= n, 900, "all scored", cluster)
            t2 = time.monotonic()
            workers_cpu = sum(cpu_since(b, cpu_of(r, url))["score_worker"] for b, r in zip(cpu_before, scorers))
        finally:
            cluster.stop_all()
            forget_engine(url)
    return {"bench": "scorers", "replicas": replicas, "posts": n - start, "startup_s": round(t1 - t0, 1),
            "posts_per_s": round((n - start) / (t2 - t1), 1),
            # on a full backlog (every batch full), one model thread each
            "score_worker_cpu_ms_per_post": round(1000 * workers_cpu / (n - start), 2)}


def _scoring(replica: Replica) -> bool:
    try:
        return "score" in replica.health()["daemon"]["jobs"]
    except (httpx.HTTPError, KeyError, ValueError):
        return False


def run_lag(db: str, rate: float, seconds: float, threads: int) -> dict[str, Any]:
    total = int(rate * seconds)
    texts = synthetic_tweets(total, seed=13)
    with fresh_database(db) as url, tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(Path(tmp), url, AlertReceiver())
        try:
            replica = cluster.start("a", threads=threads, detect_interval=DETECT_INTERVAL)
            cluster.wait_ready()
            warm_up(cluster, url)
            batch = max(int(rate / 10), 1)  # ten pushes a second
            cpu_before, ticks_before = cpu_of(replica, url), _score_runs(replica)
            start = time.monotonic()
            with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
                for i in range(0, total, batch):
                    due = start + i / rate
                    time.sleep(max(due - time.monotonic(), 0))
                    answer = client.post(f"{replica.base}/api/ingest/acme-push", json=posts_for(texts[i:i + batch], f"l{i}-"))
                    assert answer.status_code == 200, answer.text
            wait_for(lambda: counts(url)["scored"] >= total, 600, "all scored", cluster)
            cpu = cpu_since(cpu_before, cpu_of(replica, url))
            ticks = _score_runs(replica) - ticks_before
            values = lags(url)
        finally:
            cluster.stop_all()
            forget_engine(url)
    q = statistics.quantiles(values, n=100)
    return {"bench": "lag", "rate_posts_per_s": rate, "seconds": seconds, "posts": total, "model_threads": threads,
            "lag_p50_s": round(q[49], 2), "lag_p95_s": round(q[94], 2), "lag_max_s": round(values[-1], 2),
            # posts scored as they trickle in (small batches), against throughput's backlog
            "score_ticks": ticks, "posts_per_tick": round(total / ticks, 1) if ticks else None,
            "cpu_ms_per_post": {k: round(1000 * v / total, 2) for k, v in cpu.items()}}


def alert_level(body: dict[str, Any]) -> str:
    """"opened SEV-3", "severity_changed SEV-2", ...: one alert per level is the aim."""
    event = body.get("event") or {}
    data = event.get("data") or {}
    level = data.get("to", data.get("severity"))
    return f"{event.get('kind')}" + (f" SEV-{level}" if level is not None else "")


def run_failover(db: str) -> dict[str, Any]:
    with fresh_database(db) as url, tempfile.TemporaryDirectory() as tmp:
        hook = AlertReceiver()
        cluster = Cluster(Path(tmp), url, hook)
        try:
            for name in ("a", "b"):
                cluster.start(name, lease_seconds=LEASE_SECONDS, detect_interval=DETECT_INTERVAL)
            cluster.wait_ready()
            holder = wait_for(lambda: lease_holder(cluster, "detect:Acme"), 60, "detect lease", cluster)
            background = synthetic_tweets(200, seed=5)
            push_all(cluster, posts_for(background, "bg", datetime.now(timezone.utc) - timedelta(minutes=30)), 2)
            surge_started = time.time()
            killed_at: float | None = None
            takeover: dict[str, Any] = {}

            def watch_takeover() -> None:  # polled while the surge goes on, so the takeover time is its own
                while "at" not in takeover and time.time() - surge_started < 180:
                    h = lease_holder(cluster, "detect:Acme")
                    if h and h != holder:
                        takeover.update(at=time.time(), holder=h)
                    time.sleep(0.2)

            for step in range(12):  # a minute of complaints, growing
                texts = [NEGATIVE[i % 4] + f" ({step}-{i})" for i in range(10 + 10 * step)]
                push_all(cluster, posts_for(texts, f"c{step}-"), 2, batch=25)
                if step == 3 and killed_at is None:  # mid-crisis: the detection holder dies
                    doomed = replica_of(cluster, holder)
                    cluster.kill9(doomed)
                    killed_at = time.time()
                    watcher = threading.Thread(target=watch_takeover, daemon=True)
                    watcher.start()
                time.sleep(5)
            watcher.join(120)
            wait_for(lambda: hook.keys, 120, "an alert", cluster)
            wait_for(lambda: counts(url)["pending"] == 0, 300, "the backlog scored", cluster)
            time.sleep(15)  # detection and delivery of what the last posts changed; a second send would land now
        finally:
            cluster.stop_all()
            forget_engine(url)
        first_alert = min(hook.first_at.values()) if hook.first_at else None
        kinds = Counter(alert_level(body) for body in hook.bodies)
    assert killed_at is not None
    return {"bench": "failover", "killed_holder": holder, "new_holder": takeover.get("holder"),
            "lease_seconds": LEASE_SECONDS, "detect_interval_s": DETECT_INTERVAL,
            "takeover_after_kill_s": round(takeover["at"] - killed_at, 1) if "at" in takeover else None,
            "first_alert_after_surge_s": round(first_alert - surge_started, 1) if first_alert else None,
            "first_alert_after_kill_s": round(first_alert - killed_at, 1) if first_alert else None,
            "alerts": len(hook.bodies), "distinct_keys": len(hook.keys),
            "max_deliveries_per_key": max(hook.keys.values(), default=0), "alerts_per_level": dict(kinds)}


def main(argv: list[str] | None = None) -> int:
    global DETECT_INTERVAL
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
    ap.add_argument("--detect-interval", type=float, default=DETECT_INTERVAL,
                    help="the replicas' daemon.detect_interval_seconds (default: the shipped default)")
    ap.add_argument("--timeout", type=float, default=900,
                    help="seconds the whole run may take; past it the replicas are stopped and the run fails")
    a = ap.parse_args(argv)
    DETECT_INTERVAL = a.detect_interval

    def expired(*_: Any) -> None:
        raise TimeoutError(f"bench_replicas {a.what}: over --timeout {a.timeout:.0f}s")

    def stopped(*_: Any) -> None:
        raise SystemExit(f"bench_replicas {a.what}: stopped by SIGTERM")

    signal.signal(signal.SIGALRM, expired)  # raised in the main thread: the clusters' finally blocks stop them
    signal.signal(signal.SIGTERM, stopped)  # the same for kill or timeout(1): no replica outlives the bench
    signal.alarm(int(a.timeout))
    print(json.dumps({"cpu": cpu_model(), "cores": os.cpu_count(), "load_avg": os.getloadavg()}), flush=True)
    runs: list[Callable[[], dict[str, Any]]]
    if a.what == "throughput":
        runs = [lambda: run_throughput(a.db, a.posts, a.threads)]
    elif a.what == "scorers":
        runs = [lambda: run_scorers(a.db, a.posts, 1), lambda: run_scorers(a.db, a.posts, 2)]
    elif a.what == "lag":
        runs = [lambda: run_lag(a.db, a.rate, a.seconds, a.threads)]
    else:
        runs = [lambda: run_failover(a.db)]
    for run in runs:  # each printed as it ends, with the load average of its own time
        print(json.dumps({**run(), "load_avg": os.getloadavg()}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
