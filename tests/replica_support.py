"""Replicas of `flarewatch run` in subprocesses on one database, a webhook alert receiver, and
pushing posts through the ingest webhook: shared by tests/test_replicas.py and bench/bench_replicas.py."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

TOKEN = "replica-ingest-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AlertReceiver:
    """A webhook alert receiver counting deliveries per Idempotency-Key (the outbox key)."""

    def __init__(self) -> None:
        self.keys: Counter[str] = Counter()
        self.first_at: dict[str, float] = {}
        self.bodies: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                key = self.headers.get("Idempotency-Key", "")
                receiver.keys[key] += 1
                receiver.first_at.setdefault(key, time.time())
                receiver.bodies.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def config_text(tmp: Path, db_url: str, port: int, hook_url: str, *, lease_seconds: float = 1.5,
                roles: list[str] | None = None, model: str = "bundled", score_workers: int = 1,
                threads: int = 1, detect_interval: float = 0.5) -> str:
    role_line = f"roles = {json.dumps(roles)}\n" if roles else ""
    return f"""
[daemon]
data_dir = "{tmp / f'var-{port}'}"
lease_seconds = {lease_seconds}
score_interval_seconds = 0.3
detect_interval_seconds = {detect_interval}
escalate_interval_seconds = 1
score_workers = {score_workers}
log_level = "WARNING"
{role_line}
[database]
url = "{db_url}"

[model]
name = "{model}"
threads = {threads}

[web]
port = {port}
ingest_token = "{TOKEN}"
session_secret = "{'s' * 32}"

[detection]
warmup_hours = 0
detectors = ["volume", "share"]

[alerts]
console = false

[alerts.webhooks.team]
url = "{hook_url}"

[[alerts.escalation]]
levels = [{{ webhooks = ["team"], ack_timeout_minutes = 60 }}]

[[brands]]
name = "Acme"
terms = ["acme"]

[[brands.sources]]
name = "acme-push"
kind = "webhook"
"""


@dataclass
class Replica:
    name: str
    port: int
    config: Path
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def health(self) -> dict[str, Any]:
        return httpx.get(f"{self.base}/healthz", timeout=5).json()

    def alive(self) -> bool:
        return self.proc.poll() is None


@dataclass
class Cluster:
    tmp: Path
    db_url: str
    hook: AlertReceiver
    replicas: list[Replica] = field(default_factory=list)

    def start(self, name: str, **options: Any) -> Replica:
        port = free_port()
        config = self.tmp / f"{name}.toml"
        config.write_text(config_text(self.tmp, self.db_url, port, self.hook.url, **options), encoding="utf-8")
        log = self.tmp / f"{name}.log"
        proc = subprocess.Popen([sys.executable, "-m", "monitor.cli", "run", "--config", str(config)],
                                stdout=log.open("wb"), stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
        replica = Replica(name, port, config, proc, log)
        self.replicas.append(replica)
        return replica

    def wait_ready(self, timeout: float = 180) -> None:
        for replica in self.replicas:
            wait_for(lambda r=replica: _up(r), timeout, f"{replica.name} /healthz", self)

    def kill9(self, replica: Replica) -> None:
        """kill -9 of the replica and of its score workers (its process group), as a dead machine."""
        os.killpg(replica.proc.pid, signal.SIGKILL)
        replica.proc.wait(10)

    def stop_all(self) -> None:
        for replica in self.replicas:
            if replica.alive():
                replica.proc.send_signal(signal.SIGTERM)
        for replica in self.replicas:
            try:
                replica.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(replica.proc.pid, signal.SIGKILL)
        self.hook.close()

    def logs(self) -> str:
        return "\n".join(f"--- {r.name}\n{r.log.read_text(errors='replace')[-3000:]}" for r in self.replicas)


def _up(replica: Replica) -> bool:
    try:
        return replica.health().get("daemon") is not None
    except httpx.HTTPError:
        return False


def wait_for(condition: Callable[[], Any], timeout: float, what: str, cluster: Cluster | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{cluster.logs() if cluster else ''}")


def push(replica: Replica, posts: list[dict[str, Any]]) -> httpx.Response:
    return httpx.post(f"{replica.base}/api/ingest/acme-push", json=posts, timeout=30,
                      headers={"Authorization": f"Bearer {TOKEN}"})


def lease_holder(cluster: Cluster, name: str) -> str | None:
    for replica in cluster.replicas:
        if replica.alive():
            try:
                for shown in replica.health()["daemon"]["replicas"]:
                    if name in shown["leases"]:
                        return shown["id"]
            except (httpx.HTTPError, KeyError):
                continue
    return None


def replica_of(cluster: Cluster, replica_id: str) -> Replica:
    pid = int(replica_id.split(":")[1])
    return next(r for r in cluster.replicas if r.proc.pid == pid)


def children(pid: int) -> dict[int, str]:
    """The live child processes of `pid` (Linux /proc): pid -> command line."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "(comm)": state, ppid, ...
        if int(fields[1]) == pid and fields[0] != "Z":
            found[int(entry.name)] = cmdline
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def running(pid: int) -> bool:
    """The process exists and is not a zombie (an orphan's zombie waits for a reaper that may not reap)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
