"""The daemon as a user runs it: a subprocess, stopped with SIGTERM, restarted, nothing lost."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from monitor.core.storage.db import make_engine, session_factory
from monitor.core.storage.schema import Post, Score, Source

POSTS = 40


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_stream(path: Path) -> None:
    t0 = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
    with path.open("w", encoding="utf-8") as f:
        for i in range(POSTS):
            text = f"Acme support never answered my ticket #{i}" if i % 2 else f"Acme kettle number {i} is lovely"
            f.write(json.dumps({"id": f"p{i}", "created_at": (t0 + timedelta(seconds=30 * i)).isoformat(),
                                "author": f"user{i}", "text": text, "lang": "en"}) + "\n")


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, int]:
    write_stream(tmp_path / "stream.jsonl")
    port = free_port()
    config = tmp_path / "flarewatch.toml"
    config.write_text(f"""
[daemon]
data_dir = "{tmp_path / 'var'}"
score_interval_seconds = 0.5
detect_interval_seconds = 1

[web]
port = {port}

[[brands]]
name = "Acme"
terms = ["acme"]

[[brands.sources]]
name = "stream"
kind = "jsonl"
interval_seconds = 0.3
params = {{ path = "{tmp_path / 'stream.jsonl'}", lines_per_page = 4, max_pages = 1 }}

[[brands.sources]]
name = "broken"
kind = "jsonl"
interval_seconds = 0.3
params = {{ path = "{tmp_path / 'does-not-exist.jsonl'}" }}
""", encoding="utf-8")
    return config, port


def start(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "monitor.cli", "run", "--config", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def wait_for(condition, timeout: float, what: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"daemon exited early ({proc.returncode}) while waiting for {what}:\n{proc.stdout.read()}")
        if condition():
            return
        time.sleep(0.2)
    proc.kill()
    pytest.fail(f"timed out waiting for {what}:\n{proc.stdout.read()}")


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the daemon did not stop within 10 s of SIGTERM")
    assert proc.returncode == 0, out
    return out


def counts(url: str) -> tuple[int, int, int]:
    engine = make_engine(url)
    with session_factory(engine)() as s:
        posts = s.scalar(select(func.count(Post.id))) or 0
        distinct = s.scalar(select(func.count(func.distinct(Post.external_id)))) or 0
        scores = s.scalar(select(func.count(Score.id))) or 0
    engine.dispose()
    return posts, distinct, scores


def test_sigterm_stops_cleanly_and_a_restart_resumes_with_nothing_lost(setup, tmp_path: Path) -> None:
    config, port = setup
    url = f"sqlite:///{tmp_path / 'var' / 'flarewatch.db'}"

    first = start(config)
    wait_for(lambda: _healthy(port), 120, "/healthz", first)
    wait_for(lambda: counts(url)[0] >= 8, 60, "some posts", first)
    out = stop(first)
    assert "flarewatch stopped" in out
    stored_before, _, _ = counts(url)
    assert stored_before < POSTS, "the first run should be stopped part-way through the stream"

    second = start(config)
    wait_for(lambda: counts(url) == (POSTS, POSTS, POSTS), 300, "every post stored and scored once", second)
    health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()
    stop(second)

    engine = make_engine(url)
    with session_factory(engine)() as s:
        broken = s.get(Source, "broken")
        assert broken is not None and broken.consecutive_failures >= 1 and "does-not-exist" in broken.last_error
        assert s.get(Source, "stream").last_success_at is not None
    engine.dispose()
    assert "broken" in json.dumps(health), "a failing source shows in /healthz"


def _healthy(port: int) -> bool:
    """/healthz answers 200 (a slow answer on a loaded machine is "not yet", not a failure)."""
    try:
        return _port_open(port) and httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_a_second_daemon_on_a_taken_port_says_so_and_exits_3(setup) -> None:
    """The README's exit codes: 3 = could not start, the web port is taken; one clear line, no traceback."""
    config, port = setup
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        for command in (["run"], ["web"]):
            result = subprocess.run([sys.executable, "-m", "monitor.cli", *command, "--config", str(config)],
                                    capture_output=True, text=True, timeout=120)
            assert result.returncode == 3, result.stderr[-2000:]
            assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "another flarewatch" in result.stderr
            assert "Traceback" not in result.stderr and "asyncio" not in result.stderr


def test_a_score_workers_error_stays_in_healthz_and_the_job_shows_once_a_worker_reports(tmp_path: Path) -> None:
    """The supervisor's own ticks (every second) used to count as the "score" job's runs and clear
    the error a worker reported; /healthz showed a "score" job before any worker had run."""
    import asyncio

    from monitor.config import parse_config
    from monitor.daemon import Daemon, _ThreadQueue

    config = parse_config({"daemon": {"data_dir": str(tmp_path)}, "database": {"url": f"sqlite:///{tmp_path / 'f.db'}"},
                           "brands": [{"name": "Acme", "terms": ["acme"]}]}, env={})
    daemon = Daemon(config)
    try:
        daemon._score_stats = _ThreadQueue()
        supervise = daemon._guarded("score-workers", daemon.supervise_scoring)
        asyncio.run(supervise())
        assert "score" not in daemon.health.as_dict()["jobs"]  # no worker has reported yet
        daemon._score_stats.put({"worker": "w1", "runs": 3, "failures": 3, "error": "OperationalError: gone",
                                 "ok": None, "duration_s": 0.1, "started": T0_ISO, "scored": 0})
        for _ in range(3):
            asyncio.run(supervise())
        score = daemon.health.as_dict()["jobs"]["score"]
        assert (score["runs"], score["failures"], score["last_error"]) == (3, 3, "OperationalError: gone")
    finally:
        daemon.engine.dispose()
        if daemon._lock is not None:
            daemon._lock.close()


T0_ISO = "2026-11-02T09:00:00+00:00"


def test_a_stop_while_the_scoring_thread_is_still_loading_its_model_exits_cleanly_and_promptly(tmp_path: Path) -> None:
    """On SQLite scoring is a thread of the daemon. A SIGTERM while it was still loading the model
    (slow on a busy machine) left it running past the 4 s the stop waits, and the interpreter then
    exited under it: torch's threads aborted the process ("terminate called without an active
    exception", exit -6). Waiting for the load instead would hold the stop for as long as it takes."""
    script = f"""
import os, signal, threading, time
import monitor.daemon as daemon_module
from monitor.config import parse_config

def slow_load(settings):
    import torch
    a = torch.ones(512, 512)
    end = time.monotonic() + 60  # far longer than a stop may take, inside torch as a real load is
    while time.monotonic() < end:
        a @ a

daemon_module.load_scorer = slow_load
config = parse_config({{"daemon": {{"data_dir": {str(tmp_path)!r}}},
                       "database": {{"url": "sqlite:///{tmp_path / 'f.db'}"}},
                       "brands": [{{"name": "Acme", "terms": ["acme"]}}]}}, env={{}})
threading.Timer(3, lambda: os.kill(os.getpid(), signal.SIGTERM)).start()
daemon_module.run_daemon(config, roles=["score"])
"""
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert time.monotonic() - started < 50, "the stop waited for the model to load"
    assert "terminate called" not in result.stderr
    assert "scoring thread was still busy" in result.stderr
