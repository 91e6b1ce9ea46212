"""The daemon: an APScheduler loop that runs every stage on its interval, plus the web app.

Each job runs with max_instances=1 (never overlapping itself) and inside a guard that logs and
records a failure instead of letting it escape, so one failing job or source never stops the rest.
All state lives in the database (cursors, pending scores, outbox), so a restart resumes where the
last run stopped. SIGTERM/SIGINT stop the scheduler and the web server within a few seconds.

Replicas: any number of daemons may share one PostgreSQL database (docs/scaling.md). Work that
must have one doer at a time is leased (`monitor.core.leases`): each source's polling, each brand's
detection, delivery with escalation, the weekly digest; a dead replica's leases expire after
`daemon.lease_seconds` and the others take them at their next tick. Scoring needs no lease: every
scorer takes disjoint batches (`FOR UPDATE SKIP LOCKED`), and runs in its own process by default
(`daemon.score_workers`) so it never competes with ingest for one interpreter. SQLite is for one
process: a second daemon on the same file is refused (an OS lock on a file next to it).
"""
from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import fcntl
from queue import SimpleQueue

import httpx
import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import BaseScheduler
from sqlalchemy import delete, select
from sqlalchemy.engine import make_url

from alerts.delivery import deliver_pending, release_claims
from alerts.escalation import escalate_due
from alerts.interactivity import start_socket_mode
from alerts.routing import notifier
from alerts.senders import build_senders
from alerts.slack import check_auth, post_message
from models import load_scorer
from monitor.config import Config
from monitor.core.clock import Clock, SystemClock
from monitor.core.leases import Leases, heartbeat, leave, new_replica_id, replicas
from monitor.core.queue import lapse_expired
from monitor.core.storage.db import make_engine, migrate, redact_url, session_factory, transaction
from monitor.core.storage.schema import Bucket, IncidentPost, Post, Source
from monitor.detection.incidents import detect
from monitor.logs import setup_logging
from monitor.metrics import JOB_FAILURES, JOB_SECONDS, POSTS_SCORED
from monitor.pipeline import score_pending
from monitor.polling import poll_source
from monitor.reports.digest import digest_message
from monitor.reports.figures import weekly_figures
from monitor.web.app import bind_socket, create_app

if TYPE_CHECKING:
    from monitor.polling import PollResult

log = logging.getLogger("flarewatch.daemon")
SLACK_RECHECK_SECONDS = 600


def steer_poll_job(scheduler: BaseScheduler, job_id: str, interval_seconds: float, result: PollResult) -> None:
    """Let a source's answer steer its poll job: pause it on bad credentials, wait as long as it asked.

    A paused source stays paused until the daemon restarts (credentials live in the config, which
    is read at start); the sources page and `flarewatch sources status` show "needs credentials".
    """
    if result.auth_failed:
        scheduler.pause_job(job_id)
        log.warning("source paused: it needs credentials; fix them and restart",
                    extra={"source": result.source, "error": result.error})
    elif result.retry_after is not None and result.retry_after > interval_seconds:
        when = datetime.now().astimezone() + timedelta(seconds=result.retry_after)
        scheduler.modify_job(job_id, next_run_time=when)
        log.info("source asked to be left alone; next poll deferred",
                 extra={"source": result.source, "retry_after_s": round(result.retry_after), "at": when.isoformat()})


@dataclass
class JobHealth:
    runs: int = 0
    failures: int = 0
    last_started: datetime | None = None
    last_ok: datetime | None = None
    last_error: str | None = None
    last_duration_s: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "runs": self.runs, "failures": self.failures, "last_error": self.last_error,
            "last_started": self.last_started.isoformat() if self.last_started else None,
            "last_ok": self.last_ok.isoformat() if self.last_ok else None,
            "last_duration_s": self.last_duration_s,
        }


@dataclass
class Health:
    started_at: datetime
    jobs: dict[str, JobHealth] = field(default_factory=dict)
    cluster: Callable[[], dict[str, Any]] | None = None  # this replica, the others and their leases
    slack_auth: Any = None  # alerts.slack.SlackAuth from the last auth.test, when Slack is configured

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"started_at": self.started_at.isoformat(),
                                "jobs": {k: v.as_dict() for k, v in self.jobs.items()},
                                "alerts": {"slack_auth": self.slack_auth.as_dict() if self.slack_auth is not None else None}}
        if self.cluster is not None:
            body.update(self.cluster())
        return body


class AlreadyRunning(RuntimeError):
    """A second daemon on one SQLite file."""


def lock_sqlite(url: str) -> IO[str] | None:
    """Hold an OS lock on `<database>.lock` for the daemon's life; refuse if another process holds it.

    SQLite has no row locks to share work with, so two daemons on one file would poll, score and
    alert twice. The lock goes with the process (also on kill -9), so a stale file never blocks.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    path = Path(parsed.database).resolve().with_name(Path(parsed.database).name + ".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o600), "r+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = handle.read().strip() or "unknown"
        handle.close()
        raise AlreadyRunning(
            f"another flarewatch daemon (pid {owner}) is already running on {parsed.database}; SQLite is for "
            f"one daemon. Stop it first, or use PostgreSQL to run several replicas (docs/scaling.md)."
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


class Daemon:
    def __init__(self, config: Config, clock: Clock | None = None, roles: list[str] | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.roles = list(roles or config.daemon.roles)
        self._lock = lock_sqlite(config.database_url)
        self.engine = make_engine(config.database_url)
        migrate(self.engine)
        self.sessions = session_factory(self.engine)
        self.dialect = self.engine.dialect.name
        self.replica_id = new_replica_id()
        self.leases = Leases(self.sessions, self.replica_id, config.daemon.lease_seconds)
        self.health = Health(started_at=self.clock.now(), cluster=self.cluster)
        self.scheduler = AsyncIOScheduler(
            timezone="UTC", job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": None}
        )
        # Built once: senders keep pacing state and caches between runs.
        self.senders = build_senders(config.alerts)
        self.notify = notifier(config.alerts)
        self._stop = asyncio.Event()
        self._stopping = threading.Event()  # the same, for scoring threads and processes
        self._scorer: Any = None
        self._scoring: list[Any] = []  # score worker processes or threads
        self._score_stats: Any = None
        self._scored_seen: dict[str, int] = {}  # per score worker: posts already added to the metric
        self._http: httpx.AsyncClient | None = None

    def cluster(self) -> dict[str, Any]:
        """This replica, every replica seen lately and the leases each holds (for /healthz)."""
        return {"replica": {"id": self.replica_id, "roles": self.roles},
                "replicas": replicas(self.sessions, self.dialect, alive_within=self.config.daemon.lease_seconds)}

    # -- jobs ---------------------------------------------------------------------------------

    def _guarded(self, name: str, job: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[None]]:
        health = self.health.jobs.setdefault(name, JobHealth())

        async def run() -> None:
            started = time.monotonic()
            health.runs += 1
            health.last_started = self.clock.now()
            try:
                await job()
            except Exception as exc:  # noqa: BLE001 - a job's failure must not stop the daemon
                health.failures += 1
                JOB_FAILURES.labels(name).inc()
                health.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("job failed", extra={"job": name})
            else:
                health.last_ok = self.clock.now()
                health.last_error = None
            finally:
                elapsed = time.monotonic() - started
                health.last_duration_s = round(elapsed, 3)
                JOB_SECONDS.labels(name).observe(elapsed)

        return run

    def _schedule(self, name: str, seconds: float, job: Callable[[], Awaitable[Any]]) -> None:
        self.scheduler.add_job(self._guarded(name, job), "interval", seconds=seconds, id=name, name=name,
                               next_run_time=datetime.now().astimezone())

    def _add_jobs(self) -> None:
        d = self.config.daemon
        self._schedule("heartbeat", max(d.lease_seconds / 4, 0.5), self.beat)
        if "poll" in self.roles:
            self._add_poll_jobs()
        if "score" in self.roles:
            self._schedule("score-workers", max(d.score_interval_seconds, 1), self.supervise_scoring)
        if "detect" in self.roles:
            self._schedule("detect", d.detect_interval_seconds, self.detect)
        if "deliver" in self.roles:
            self._schedule("deliver", 2, self.deliver)
            self._schedule("escalate", d.escalate_interval_seconds, self.escalate)
            if self.config.alerts.slack_enabled:  # checked at start (run), then again now and then
                self.scheduler.add_job(self._guarded("slack-auth", self.check_slack), "interval",
                                       seconds=SLACK_RECHECK_SECONDS, id="slack-auth", name="slack-auth")
            if self.config.alerts.weekly_digest and self.config.alerts.slack_enabled:
                self.scheduler.add_job(self._guarded("weekly-digest", self.weekly_digest), "cron", day_of_week="mon",
                                       hour=9, id="weekly-digest", name="weekly-digest")
        self._schedule("lapse-claims", 30, self.lapse_claims)  # idempotent SQL: any replica may run them
        self._schedule("retention", 3600, self.retention)

    def _add_poll_jobs(self) -> None:
        """One job per source on every replica; the one holding the source's lease polls it when due.

        The others only look at the lease, every few seconds, so a dead holder's sources move to
        them within `lease_seconds` of its last renewal instead of after a whole interval.
        """
        assert self._http is not None
        http, lease = self._http, self.config.daemon.lease_seconds
        for brand, source in self.config.sources():
            if not source.enabled or source.mode == "push":
                continue  # push sources have nothing to poll: their posts arrive at /api/ingest
            name = f"poll:{source.name}"

            async def poll(brand: Any = brand, source: Any = source, name: str = name) -> None:
                if not await asyncio.to_thread(self.leases.try_take, name):
                    return
                if not await asyncio.to_thread(self._poll_due, source.name, source.interval_seconds):
                    return
                result = await poll_source(self.sessions, brand, source, http, self.clock,
                                           fence=lambda session, name=name: self.leases.fence(session, name))  # type: ignore[misc]
                steer_poll_job(self.scheduler, name, source.interval_seconds, result)

            self._schedule(name, min(source.interval_seconds, max(lease / 4, 0.5)), poll)

    def _poll_due(self, name: str, interval: float) -> bool:
        """Polled less recently than its interval, by any replica (the attempt time is in the database)."""
        with self.sessions() as session:
            last = session.scalar(select(Source.last_attempt_at).where(Source.name == name))
        return last is None or (self.clock.now() - last).total_seconds() >= interval * 0.98

    async def beat(self) -> None:
        await asyncio.to_thread(heartbeat, self.sessions, self.replica_id, ",".join(self.roles), self.dialect,
                                forget_after=max(self.config.daemon.lease_seconds * 30, 600))

    async def supervise_scoring(self) -> None:
        """Keep the score workers running (a crashed one is restarted) and fold in their health.

        The workers' own runs and errors are the "score" job of /healthz, shown from their first
        report on (so its presence says a worker has its model loaded and is in its loop); this
        supervisor is the "score-workers" job, so its ticks never overwrite a worker's error.
        """
        if self._score_stats is not None:
            while True:
                try:
                    stats = self._score_stats.get_nowait()
                except Exception:  # noqa: BLE001 - queue.Empty (multiprocessing raises the queue module's)
                    break
                health = self.health.jobs.setdefault("score", JobHealth())
                POSTS_SCORED.inc(stats["scored"] - self._scored_seen.get(stats["worker"], 0))
                self._scored_seen[stats["worker"]] = stats["scored"]
                health.runs, health.failures, health.last_error = stats["runs"], stats["failures"], stats["error"]
                health.last_duration_s = stats["duration_s"]
                health.last_ok = datetime.fromisoformat(stats["ok"]) if stats["ok"] else health.last_ok
                health.last_started = datetime.fromisoformat(stats["started"])
        for index, worker in enumerate(self._scoring):
            if not worker.is_alive() and not self._stopping.is_set():
                code = getattr(worker, "exitcode", None)
                log.error("score worker %d stopped (exit code %s); starting it again", index, code)
                self._scoring[index] = self._start_score_worker(index)

    def _score_workers(self) -> int:
        """Processes on PostgreSQL; on SQLite a thread (one file serialises writers, and a second
        process writing to it would only contend for its lock)."""
        return 0 if self._lock is not None else self.config.daemon.score_workers

    def _start_scoring(self) -> None:
        if "score" not in self.roles:
            return
        # The model's OpenMP threads wait for work by sleeping, not spinning: they share the cores
        # with ingest and the database, and spinning threads burnt up to 3x the model's own CPU
        # (bench_replicas throughput, 3,000 posts: score worker 45 CPU-s vs 20 passive, end to end
        # 48 vs 169 posts/s). Set before torch loads (in the spawned worker, or in this process's
        # scoring thread on SQLite); an explicit OMP_WAIT_POLICY is kept.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        workers = self._score_workers()
        if workers == 0:
            self._score_stats = _ThreadQueue()
        else:
            self._score_stats = multiprocessing.get_context("spawn").Queue()
            self._mp_stop = multiprocessing.get_context("spawn").Event()
        self._scoring = [self._start_score_worker(i) for i in range(max(workers, 1))]

    def _start_score_worker(self, index: int) -> Any:
        if self._score_workers() == 0:
            worker: Any = threading.Thread(target=score_loop, name="score", daemon=True, args=(
                self.config, self.sessions, self._stopping, self._score_stats))
        else:
            worker = multiprocessing.get_context("spawn").Process(
                target=score_worker_main, name=f"flarewatch-score-{index}", daemon=True,
                args=(self.config, self._mp_stop, self._score_stats, os.getpid()))
        worker.start()
        return worker

    def _stop_scoring(self) -> None:
        self._stopping.set()
        if getattr(self, "_mp_stop", None) is not None:
            self._mp_stop.set()
        deadline = time.monotonic() + 4
        for worker in self._scoring:
            worker.join(max(deadline - time.monotonic(), 0.1))
            if worker.is_alive() and hasattr(worker, "terminate"):
                worker.terminate()  # mid-batch: its transaction rolls back, the batch stays pending
                worker.join(1)

    def scoring_thread_alive(self) -> bool:
        """A scoring thread (SQLite) still inside the model after the stop's deadline: it cannot be
        stopped from outside (loading the model on a busy machine can take longer than a stop may)."""
        return any(isinstance(w, threading.Thread) and w.is_alive() for w in self._scoring)

    async def detect(self) -> None:
        """Each brand is detected by the replica holding its lease, fenced in the detect transaction."""
        def claim(session: Any, brand: str) -> bool:
            return self.leases.fence(session, f"detect:{brand}")

        def run() -> None:
            mine = [b for b in self.config.brands if self.leases.try_take(f"detect:{b.name}")]
            if mine:
                detect(self.sessions, mine, self.config.detection, self.notify, self.clock, claim=claim)

        await asyncio.to_thread(run)

    async def deliver(self) -> None:
        """One replica delivers at a time (Slack's pacing is per process); claims keep each row once."""
        def run() -> None:
            if self.leases.try_take("deliver"):
                deliver_pending(self.sessions, self.senders, self.clock)

        await asyncio.to_thread(run)

    async def escalate(self) -> None:
        def run() -> None:
            if self.leases.try_take("escalate"):
                escalate_due(self.sessions, self.config.alerts, self.clock)

        await asyncio.to_thread(run)

    async def check_slack(self) -> None:
        """auth.test with the bot token: a revoked or mistyped token shows in /healthz before the first alert."""
        auth = await asyncio.to_thread(check_auth, self.config.alerts, self.clock.now())
        if not auth.ok and (self.health.slack_auth is None or self.health.slack_auth.ok):
            log.error("Slack token check failed; alerts to Slack will not be delivered",
                      extra={"error": auth.error})
        elif auth.ok and (self.health.slack_auth is None or not self.health.slack_auth.ok):
            log.info("Slack token ok", extra={"team": auth.team, "bot_user": auth.bot_user})
        self.health.slack_auth = auth

    async def lapse_claims(self) -> None:
        def lapse() -> None:
            with transaction(self.sessions) as session:
                lapse_expired(session, self.clock.now())

        await asyncio.to_thread(lapse)

    async def weekly_digest(self) -> None:
        """The managers' weekly response figures, posted to Slack."""
        def post() -> None:
            if not self.leases.try_take("weekly-digest", ttl=3600):  # one replica posts it
                return
            with transaction(self.sessions) as session:
                weeks = weekly_figures(session, None, 2, self.clock.now())
            post_message(self.config.alerts, digest_message(weeks, self.config.alerts.web_base_url))

        await asyncio.to_thread(post)

    async def retention(self) -> None:
        """Drop posts and buckets past the retention period; posts of incidents are kept."""
        cutoff = self.clock.now() - timedelta(days=self.config.daemon.retention_days)

        def prune() -> None:
            with transaction(self.sessions) as session:
                kept = select(IncidentPost.post_id)
                session.execute(delete(Post).where(Post.created_at < cutoff, Post.id.not_in(kept)))
                session.execute(delete(Bucket).where(Bucket.start < cutoff))

        await asyncio.to_thread(prune)

    # -- lifecycle ----------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()
        self._stopping.set()

    async def run(self) -> None:
        """Run until `stop()` or SIGTERM/SIGINT."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop)
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(20.0, connect=10.0), follow_redirects=True,
            headers={"User-Agent": "flarewatch/0.1 (+https://github.com/flarewatch/flarewatch)"},
        )
        if self._lock is not None and "deliver" in self.roles:
            # Only where the file lock proves no other daemon is mid-send; on PostgreSQL a dead
            # replica's claims come back when their outbox lease runs out.
            await asyncio.to_thread(release_claims, self.sessions, self.clock)
        await self.beat()
        if self.config.alerts.slack_enabled and "deliver" in self.roles:
            await self.check_slack()
        web = await self._start_web() if "web" in self.roles else None
        socket_mode = self._start_socket_mode() if "web" in self.roles else None
        self._start_scoring()
        self._add_jobs()
        self.scheduler.start()
        for warning in self.config.daemon.lease_warnings(self.roles):
            log.warning(warning)
        log.info("flarewatch started", extra={"sources": len(self.config.sources()), "database": self._db_name(),
                                              "replica": self.replica_id, "roles": self.roles})
        try:
            await self._stop.wait()
        finally:
            log.info("flarewatch stopping")
            self.scheduler.shutdown(wait=False)
            await asyncio.to_thread(self._stop_scoring)
            if socket_mode is not None:
                socket_mode.close()
            if web is not None:
                server, task = web
                server.should_exit = True
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(task, timeout=5)
            await self._http.aclose()
            with contextlib.suppress(Exception):  # hand the work over now rather than after lease_seconds
                await asyncio.to_thread(self.leases.release_all)
                await asyncio.to_thread(leave, self.sessions, self.replica_id)
            self.engine.dispose()
            if self._lock is not None:
                self._lock.close()
            log.info("flarewatch stopped")

    def _start_socket_mode(self) -> Any:
        """Slack button clicks over Socket Mode, when an app-level token is configured."""
        if not self.config.alerts.slack_app_token:
            return None
        return start_socket_mode(self.sessions, self.config.alerts, self.clock)

    def _db_name(self) -> str:
        return redact_url(self.config.database_url)

    async def _start_web(self) -> tuple[Any, asyncio.Task[None]] | None:
        if not self.config.web.enabled:
            return None
        app = create_app(self.config, self.sessions, self.clock, health=self.health.as_dict)

        class EmbeddedServer(uvicorn.Server):
            def capture_signals(self) -> Any:  # the daemon owns signals
                return contextlib.nullcontext()

        server = EmbeddedServer(uvicorn.Config(app, host=self.config.web.host, port=self.config.web.port,
                                               log_config=None, access_log=False, lifespan="on"))

        sock = bind_socket(self.config.web.host, self.config.web.port)  # PortInUse: a clear error, no traceback
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn offers a flag, not an event
            await asyncio.sleep(0.05)
        if task.done():
            task.result()  # re-raise why it could not start (port in use, ...)
        log.info("web listening", extra={"url": f"http://{self.config.web.host}:{self.config.web.port}"})
        return server, task


class _ThreadQueue:
    """The score loop's stats channel when it runs as a thread (the same calls as a process queue)."""

    def __init__(self) -> None:
        self._queue: SimpleQueue[Any] = SimpleQueue()

    def put(self, item: Any) -> None:
        self._queue.put(item)

    def get_nowait(self) -> Any:
        return self._queue.get_nowait()


def score_loop(config: Config, sessions: Any, stop: Any, stats: Any) -> None:
    """Score until stopped: batch after batch while work is pending, then wait a tick.

    Runs in a score worker process (or a thread); several of them, in one replica or many, share
    the work through `FOR UPDATE SKIP LOCKED`.
    """
    clock = SystemClock()
    scorer = load_scorer(config.model)
    batch = config.model.batch_size * 4
    counters: dict[str, Any] = {"runs": 0, "failures": 0, "error": None, "ok": None, "duration_s": None,
                                "started": None, "scored": 0, "worker": f"{os.getpid()}:{threading.get_ident()}"}
    last_report = 0.0
    while not stop.is_set():
        started = time.monotonic()
        counters["runs"] += 1
        counters["started"] = clock.now().isoformat()
        try:
            done = score_pending(sessions, scorer, clock.now(), batch)
        except Exception as exc:  # noqa: BLE001 - logged and counted; the batch stays pending
            counters["failures"] += 1
            counters["error"] = f"{type(exc).__name__}: {exc}"[:500]
            log.exception("scoring failed")
            done = 0
            stop.wait(config.daemon.score_interval_seconds)
        else:
            counters["ok"], counters["error"] = clock.now().isoformat(), None
            counters["scored"] += done
        counters["duration_s"] = round(time.monotonic() - started, 3)
        if time.monotonic() - last_report >= 1.0 or done < batch:
            stats.put(dict(counters))
            last_report = time.monotonic()
        if done < batch:
            stop.wait(config.daemon.score_interval_seconds)


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent_pid: int) -> None:
    """End this process as soon as the daemon that started it is gone, however it went (kill -9 too).

    An orphaned worker would go on scoring (and holding the model's memory) for a replica that no
    longer exists, and nothing would ever stop it. Linux delivers SIGKILL on the parent's death
    (PR_SET_PDEATHSIG: immediate, even while the model holds the GIL); everywhere, a thread waits
    on the parent's sentinel (a pipe multiprocessing gives a spawned child, readable once the parent
    has exited) and ends the process. No cleanup is owed: the open transaction rolls back when the
    connection drops, and the batch is pending again. A daemon that dies while its worker is still
    starting (imports, before this runs) is caught by the parent-pid check below, at once after.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):  # e.g. a libc without prctl: the thread remains
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent_pid:  # it died before the line above could take effect
        os._exit(1)
    parent = multiprocessing.parent_process()
    if parent is not None and parent.sentinel is not None:
        def watch(sentinel: int) -> None:
            multiprocessing.connection.wait([sentinel])
            os._exit(1)  # not sys.exit: exit handlers would wait on the stats queue nobody reads any more

        threading.Thread(target=watch, args=(parent.sentinel,), name="parent-watch", daemon=True).start()


def score_worker_main(config: Config, stop: Any, stats: Any, parent_pid: int) -> None:
    """Entry point of a score worker process (spawned, so it shares nothing with the daemon but the database)."""
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the daemon stops us
    setup_logging(config.daemon.log_level)
    engine = make_engine(config.database_url)
    try:
        score_loop(config, session_factory(engine), stop, stats)
    finally:
        engine.dispose()


def run_daemon(config: Config, roles: list[str] | None = None) -> None:
    try:
        daemon = Daemon(config, roles=roles)
    except AlreadyRunning as exc:
        raise SystemExit(f"flarewatch: {exc}") from None
    asyncio.run(daemon.run())
    if daemon.scoring_thread_alive():
        # Everything is stopped and stored but that thread; letting the interpreter finalise under
        # it aborts the process inside torch (SIGABRT, "terminate called without an active
        # exception"). Its open batch rolls back with the file's journal, and stays pending.
        log.warning("stopped while the scoring thread was still busy in the model; exiting without waiting for it")
        logging.shutdown()
        os._exit(0)
