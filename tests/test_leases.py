"""Leases (one holder at a time, expiry, fencing) on both databases, and SQLite's one-daemon lock."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from monitor.daemon import AlreadyRunning, lock_sqlite
from monitor.core.leases import Leases, heartbeat, replicas
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
