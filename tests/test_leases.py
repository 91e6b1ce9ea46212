"""Leases (one holder at a time, expiry, fencing) on both databases, and SQLite's one-daemon lock."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from monitor.daemon import AlreadyRunning, lock_sqlite
from monitor.core.leases import LeaseLost, Leases, heartbeat, replicas
from monitor.core.storage.db import transaction
from monitor.core.storage.schema import Lease


def test_one_holder_at_a_time_until_the_lease_expires(sessions) -> None:
    a, b = Leases(sessions, "a", ttl=0.6), Leases(sessions, "b", ttl=0.6)
    assert a.try_take("poll:x") and not b.try_take("poll:x")
    assert a.try_take("poll:x")  # renewing is taking again
    assert b.try_take("poll:y")  # leases are independent
    time.sleep(0.8)  # a stopped renewing (it died): b takes over
    assert b.try_take("poll:x") and not a.try_take("poll:x")
    held = {lease.name: lease.holder for lease in a.all()}
    assert held == {"poll:x": "b", "poll:y": "b"}
    assert b.release_all() == 2 and a.try_take("poll:x")


def test_racing_replicas_get_exactly_one_winner(sessions) -> None:
    winners: list[str] = []
    barrier = threading.Barrier(6)

    def race(name: str) -> None:
        leases = Leases(sessions, name, ttl=30)
        barrier.wait()
        if leases.try_take("detect:Acme"):
            winners.append(name)

    threads = [threading.Thread(target=race, args=(f"r{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
    with sessions() as s:
        assert s.get(Lease, "detect:Acme").holder == winners[0]


def test_a_fence_stops_a_holder_that_lost_its_lease_from_writing(sessions) -> None:
    """A stalled replica whose lease was taken over must not write a stale result afterwards."""
    slow, fresh = Leases(sessions, "slow", ttl=0.3), Leases(sessions, "fresh", ttl=30)
    assert slow.try_take("poll:x")
    time.sleep(0.5)  # slow stalls past its expiry; fresh takes over
    assert fresh.try_take("poll:x")
    with transaction(sessions) as session:
        assert not slow.fence(session, "poll:x")
    with transaction(sessions) as session:
        assert fresh.fence(session, "poll:x")


def test_replicas_show_their_leases(sessions, engine) -> None:
    heartbeat(sessions, "r1", "poll,score", engine.dialect.name, forget_after=600)
    heartbeat(sessions, "r2", "web", engine.dialect.name, forget_after=600)
    Leases(sessions, "r1", ttl=30).try_take("deliver")
    shown = {r["id"]: r for r in replicas(sessions, engine.dialect.name, alive_within=30)}
    assert shown["r1"]["leases"] == ["deliver"] and shown["r1"]["roles"] == ["poll", "score"]
    assert shown["r2"]["leases"] == [] and shown["r2"]["alive"]


def test_a_second_daemon_on_one_sqlite_file_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'var' / 'flarewatch.db'}"
    config = tmp_path / "flarewatch.toml"
    config.write_text(f'[daemon]\ndata_dir = "{tmp_path / "var"}"\n[web]\nenabled = false\n', encoding="utf-8")
    held = lock_sqlite(url)
    try:
        with pytest.raises(AlreadyRunning, match="already running"):
            lock_sqlite(url)
        second = subprocess.run([sys.executable, "-m", "monitor.cli", "run", "--config", str(config)],
                                capture_output=True, text=True, timeout=60)
        assert second.returncode != 0
        assert "another flarewatch daemon" in second.stderr and "PostgreSQL" in second.stderr, second.stderr
    finally:
        assert held is not None
        held.close()
    assert lock_sqlite(url) is not None  # free again once the first daemon is gone


def test_the_sqlite_lock_dies_with_its_process_even_on_kill_9(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'flarewatch.db'}"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from monitor.daemon import lock_sqlite; lock = lock_sqlite(sys.argv[1]); "
        "print('locked', flush=True); time.sleep(60)"), url], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(AlreadyRunning):
        lock_sqlite(url)
    holder.kill()
    holder.wait(10)
    assert lock_sqlite(url) is not None


def test_lease_rows_are_plain_rows(sessions) -> None:
    Leases(sessions, "me", ttl=5).try_take("x")
    with sessions() as s:
        row = s.scalars(select(Lease)).one()
        assert row.holder == "me" and row.expires_at - row.acquired_at == pytest.approx(5, abs=0.5)


def _jsonl_brand(tmp_path: Path) -> Any:
    from datetime import datetime, timedelta, timezone

    from monitor.config import BrandConfig, SourceConfig

    t0 = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
    path = tmp_path / "stream.jsonl"
    path.write_text("".join(json.dumps({"id": f"p{i}", "created_at": (t0 + timedelta(seconds=i)).isoformat(),
                                        "author": f"u{i}", "text": f"Acme post {i}"}) + "\n" for i in range(12)),
                    encoding="utf-8")
    source = SourceConfig(name="stream", kind="jsonl", params={"path": str(path), "lines_per_page": 3})
    return BrandConfig(name="Acme", terms=["acme"], sources=[source])


def test_a_poller_that_lost_its_lease_mid_poll_writes_nothing_more_and_the_cursor_only_advances(
        sessions, tmp_path: Path) -> None:
    import asyncio

    import httpx

    from monitor.core.clock import SystemClock
    from monitor.core.storage.schema import Post, Source
    from monitor.polling import poll_source

    brand = _jsonl_brand(tmp_path)
    a, b = Leases(sessions, "a", ttl=30), Leases(sessions, "b", ttl=30)
    calls = {"n": 0}

    def a_fence(session: Any) -> bool:  # a loses the lease to b after its first page (b took it over)
        calls["n"] += 1
        if calls["n"] == 2:
            with transaction(sessions) as other:
                other.execute(update(Lease).where(Lease.name == "poll:stream").values(holder="b"))
        return a.fence(session, "poll:stream")

    async def run(fence: Any) -> Any:
        async with httpx.AsyncClient() as client:
            return await poll_source(sessions, brand, brand.sources[0], client, SystemClock(), fence=fence)

    assert a.try_take("poll:stream")
    first = asyncio.run(run(a_fence))
    with sessions() as s:
        assert s.scalar(select(func.count(Post.id))) == first.stored == 3
        cursor_after_a = s.get(Source, "stream").cursor
        assert s.get(Source, "stream").consecutive_failures == 0  # losing a lease is not a source failure
    second = asyncio.run(run(lambda session: b.fence(session, "poll:stream")))
    with sessions() as s:
        assert second.stored == 9 and s.scalar(select(func.count(Post.id))) == 12
        assert int(s.get(Source, "stream").cursor) > int(cursor_after_a)


def test_a_page_whose_cursor_moved_underneath_is_not_written(sessions, tmp_path: Path) -> None:
    from monitor.core.clock import SystemClock
    from monitor.core.brands import BrandMatcher
    from monitor.core.posts import Page
    from monitor.core.storage.schema import Source
    from monitor.polling import PollResult, _begin, _store

    brand = _jsonl_brand(tmp_path)
    _begin(sessions, brand, brand.sources[0], SystemClock())
    with transaction(sessions) as s:
        s.get(Source, "stream").cursor = "9"  # another replica got further meanwhile
    with pytest.raises(LeaseLost):
        _store(sessions, brand, brand.sources[0], BrandMatcher(["acme"], []), Page(posts=[], cursor="3"),
               SystemClock(), PollResult("stream"), None, [None])
    with sessions() as s:
        assert s.get(Source, "stream").cursor == "9"


def test_metrics_show_the_replicas_and_who_holds_which_lease(sessions, engine) -> None:
    from prometheus_client import generate_latest

    from monitor.config import parse_config
    from monitor.core.clock import SystemClock
    from monitor.metrics import database_registry

    heartbeat(sessions, "host:1:aa", "poll,detect", engine.dialect.name, forget_after=600)
    Leases(sessions, "host:1:aa", ttl=30).try_take("detect:Acme")
    text = generate_latest(database_registry(sessions, SystemClock(), parse_config({}, env={}))).decode()
    assert 'flarewatch_replica_up{replica="host:1:aa",roles="poll,detect"} 1.0' in text
    assert 'flarewatch_lease_held{lease="detect:Acme",replica="host:1:aa"} 1.0' in text
