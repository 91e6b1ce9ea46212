"""The daemon: an APScheduler loop that runs every stage on its interval, plus the web app.

Each job runs with max_instances=1 (never overlapping itself) and inside a guard that logs and
records a failure instead of letting it escape, so one failing job or source never stops the rest.
All state lives in the database (cursors, pending scores, outbox), so a restart resumes where the
last run stopped. SIGTERM/SIGINT stop the scheduler and the web server within a few seconds.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import delete, select

from monitor.core.clock import Clock, SystemClock
from monitor.config import Config
from monitor.metrics import JOB_FAILURES, JOB_SECONDS, POSTS_SCORED
from monitor.core.storage.db import make_engine, migrate, session_factory, transaction
from monitor.core.storage.schema import Bucket, IncidentPost, Post

log = logging.getLogger("flarewatch.daemon")
SLACK_RECHECK_SECONDS = 600


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
    slack_auth: Any = None  # alerts.slack.SlackAuth from the last auth.test, when Slack is configured

    def as_dict(self) -> dict[str, Any]:
        return {"started_at": self.started_at.isoformat(), "jobs": {k: v.as_dict() for k, v in self.jobs.items()},
                "alerts": {"slack_auth": self.slack_auth.as_dict() if self.slack_auth is not None else None}}


class Daemon:
    def __init__(self, config: Config, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.engine = make_engine(config.database_url)
        migrate(self.engine)
        self.sessions = session_factory(self.engine)
        self.health = Health(started_at=self.clock.now())
        self.scheduler = AsyncIOScheduler(
            timezone="UTC", job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": None}
        )
        self._stop = asyncio.Event()
        self._scorer: Any = None
        self._http: httpx.AsyncClient | None = None

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
        from monitor.polling import poll_source

        assert self._http is not None
        http = self._http
        for brand, source in self.config.sources():
            if not source.enabled or source.mode == "push":
                continue  # push sources have nothing to poll: their posts arrive at /api/ingest

            async def poll(brand: Any = brand, source: Any = source) -> None:
                await poll_source(self.sessions, brand, source, http, self.clock)

            self._schedule(f"poll:{source.name}", source.interval_seconds, poll)
        d = self.config.daemon
        self._schedule("score", d.score_interval_seconds, self.score)
        self._schedule("detect", d.detect_interval_seconds, self.detect)
        self._schedule("deliver", 2, self.deliver)
        if self.config.alerts.slack_enabled:  # checked at start (run), then again now and then
            self.scheduler.add_job(self._guarded("slack-auth", self.check_slack), "interval", seconds=SLACK_RECHECK_SECONDS,
                                   id="slack-auth", name="slack-auth")
        self._schedule("escalate", d.escalate_interval_seconds, self.escalate)
        self._schedule("lapse-claims", 30, self.lapse_claims)
        self._schedule("retention", 3600, self.retention)
        if self.config.alerts.weekly_digest and self.config.alerts.slack_enabled:
            self.scheduler.add_job(self._guarded("weekly-digest", self.weekly_digest), "cron", day_of_week="mon",
                                   hour=9, id="weekly-digest", name="weekly-digest")

    async def score(self) -> None:
        """Score until nothing is pending, in batches, off the event loop (torch is CPU-bound)."""
        from models import load_scorer
        from monitor.pipeline import score_pending

        if self._scorer is None:
            self._scorer = await asyncio.to_thread(load_scorer, self.config.model)
        batch = self.config.model.batch_size * 4
        while not self._stop.is_set():
            done = await asyncio.to_thread(score_pending, self.sessions, self._scorer, self.clock.now(), batch)
            POSTS_SCORED.inc(done)
            if done < batch:
                return

    async def detect(self) -> None:
        from monitor.detection.incidents import detect

        await asyncio.to_thread(detect, self.sessions, self.config, self.clock)

    async def deliver(self) -> None:
        from alerts.delivery import deliver_pending, senders_for

        await asyncio.to_thread(deliver_pending, self.sessions, senders_for(self.config.alerts), self.clock)

    async def check_slack(self) -> None:
        """auth.test with the bot token: a revoked or mistyped token shows in /healthz before the first alert."""
        from alerts.slack import check_auth

        auth = await asyncio.to_thread(check_auth, self.config.alerts, self.clock.now())
        if not auth.ok and (self.health.slack_auth is None or self.health.slack_auth.ok):
            log.error("Slack token check failed; alerts to Slack will not be delivered",
                      extra={"error": auth.error})
        elif auth.ok and (self.health.slack_auth is None or not self.health.slack_auth.ok):
            log.info("Slack token ok", extra={"team": auth.team, "bot_user": auth.bot_user})
        self.health.slack_auth = auth

    async def escalate(self) -> None:
        from alerts.escalation import escalate_due

        await asyncio.to_thread(escalate_due, self.sessions, self.config.alerts, self.clock)

    async def lapse_claims(self) -> None:
        from monitor.core.queue import lapse_expired

        def lapse() -> None:
            with transaction(self.sessions) as session:
                lapse_expired(session, self.clock.now())

        await asyncio.to_thread(lapse)

    async def weekly_digest(self) -> None:
        """The managers' weekly response figures, posted to Slack."""
        from monitor.reports.digest import digest_message, post_digest
        from monitor.reports.figures import weekly_figures

        def post() -> None:
            with transaction(self.sessions) as session:
                weeks = weekly_figures(session, None, 2, self.clock.now())
            post_digest(self.config.alerts, digest_message(weeks, self.config.alerts.web_base_url))

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
        from alerts.delivery import release_claims

        await asyncio.to_thread(release_claims, self.sessions, self.clock)  # sends a dead process left mid-way
        if self.config.alerts.slack_enabled:
            await self.check_slack()
        web = await self._start_web()
        socket_mode = self._start_socket_mode()
        self._add_jobs()
        self.scheduler.start()
        log.info("flarewatch started", extra={"sources": len(self.config.sources()), "database": self._db_name()})
        try:
            await self._stop.wait()
        finally:
            log.info("flarewatch stopping")
            self.scheduler.shutdown(wait=False)
            if socket_mode is not None:
                socket_mode.close()
            if web is not None:
                server, task = web
                server.should_exit = True
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(task, timeout=5)
            await self._http.aclose()
            self.engine.dispose()
            log.info("flarewatch stopped")

    def _start_socket_mode(self) -> Any:
        """Slack button clicks over Socket Mode, when an app-level token is configured."""
        if not self.config.alerts.slack_app_token:
            return None
        from alerts.interactivity import start_socket_mode

        return start_socket_mode(self.sessions, self.config.alerts, self.clock)

    def _db_name(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    async def _start_web(self) -> tuple[Any, asyncio.Task[None]] | None:
        if not self.config.web.enabled:
            return None
        import uvicorn

        from monitor.web.app import create_app

        app = create_app(self.config, self.sessions, self.clock, health=self.health.as_dict)

        class EmbeddedServer(uvicorn.Server):
            def capture_signals(self) -> contextlib.AbstractContextManager[None]:  # the daemon owns signals
                return contextlib.nullcontext()

        server = EmbeddedServer(uvicorn.Config(app, host=self.config.web.host, port=self.config.web.port,
                                               log_config=None, access_log=False, lifespan="on"))
        task = asyncio.create_task(server.serve())
        while not server.started and not task.done():
            await asyncio.sleep(0.05)
        if task.done():
            task.result()  # re-raise why it could not start (port in use, ...)
        log.info("web listening", extra={"url": f"http://{self.config.web.host}:{self.config.web.port}"})
        return server, task


def run_daemon(config: Config) -> None:
    asyncio.run(Daemon(config).run())
