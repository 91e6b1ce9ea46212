"""Prometheus metrics for `GET /metrics` (text exposition format, prometheus-client).

Two kinds:

* Counters and histograms this process increments as it works (`PROCESS` registry): posts fetched
  and stored per source, fetch errors, posts scored, job durations and failures. They restart at
  zero with the process, as Prometheus counters do (use `rate()`/`increase()`).
* Gauges read from the database at scrape time (`DatabaseCollector`), so every replica reports the
  same state: posts waiting for the scoring stage and how old the oldest is (scoring lag), the
  claim queue by state and the age of the oldest open item and claim, open incidents by severity,
  alerts per channel by outbox status, each source's status, and the replicas sharing the
  database with the leases each holds.

Each scrape runs a handful of indexed aggregate queries; scrape every 15-60 s.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from connectors.registry import connector_mode
from monitor.core.clock import Clock
from monitor.core.leases import replicas
from monitor.core.sources import SourceState, sources_with_status
from monitor.core.storage.db import transaction
from monitor.core.storage.schema import FlaggedPost, Incident, OutboxMessage, Post

PROCESS = CollectorRegistry(auto_describe=True)
POSTS_FETCHED = Counter("flarewatch_posts_fetched", "Posts a source returned (new or not), by source",
                        ["source"], registry=PROCESS)
POSTS_STORED = Counter("flarewatch_posts_stored", "New posts stored, by source", ["source"], registry=PROCESS)
FETCH_ERRORS = Counter("flarewatch_fetch_errors", "Failed polls, by source", ["source"], registry=PROCESS)
POSTS_SCORED = Counter("flarewatch_posts_scored", "Posts the scoring stage scored", registry=PROCESS)
JOB_SECONDS = Histogram("flarewatch_job_duration_seconds", "Daemon job run time", ["job"], registry=PROCESS,
                        buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))
JOB_FAILURES = Counter("flarewatch_job_failures", "Daemon job runs that raised", ["job"], registry=PROCESS)


def count_poll(source: str, fetched: int, stored: int, ok: bool) -> None:
    POSTS_FETCHED.labels(source).inc(fetched)
    POSTS_STORED.labels(source).inc(stored)
    if not ok:
        FETCH_ERRORS.labels(source).inc()


def _age(now: datetime, then: datetime | None) -> float:
    if then is None:
        return 0.0
    if then.tzinfo is None:  # aggregates bypass the column type on SQLite
        from datetime import timezone

        then = then.replace(tzinfo=timezone.utc)
    return max((now - then).total_seconds(), 0.0)


class DatabaseCollector(Collector):
    """State gauges computed from the database at each scrape."""

    def __init__(self, sessions: sessionmaker[Session], clock: Clock, config: Any) -> None:
        self.sessions, self.clock, self.config = sessions, clock, config

    def describe(self) -> list[Any]:
        return []  # collected lazily: describing must not query the database

    def collect(self) -> Iterator[Any]:
        now = self.clock.now()
        with transaction(self.sessions) as session:
            pending, oldest = session.execute(
                select(func.count(), func.min(Post.fetched_at)).where(Post.pending)).one()
            yield GaugeMetricFamily("flarewatch_posts_pending", "Posts waiting for the scoring stage", value=pending)
            yield GaugeMetricFamily("flarewatch_scoring_lag_seconds",
                                    "Age of the oldest post waiting to be scored (0: none waiting)",
                                    value=_age(now, oldest))

            queue = GaugeMetricFamily("flarewatch_queue_items", "Flagged posts by state (a lapsed claim is open)",
                                      labels=["state"])
            claimed_live = (FlaggedPost.state == "claimed") & (FlaggedPost.claim_expires_at > now)
            open_items = (FlaggedPost.state == "open") | ((FlaggedPost.state == "claimed") & ~claimed_live)
            counts = {"open": 0, "claimed": 0, "answered": 0, "dismissed": 0}
            for state, count in session.execute(select(FlaggedPost.state, func.count()).group_by(FlaggedPost.state)):
                counts[state] = counts.get(state, 0) + count
            live = session.scalar(select(func.count()).where(claimed_live)) or 0
            counts["open"] += counts.get("claimed", 0) - live
            counts["claimed"] = live
            for state, count in sorted(counts.items()):
                queue.add_metric([state], count)
            yield queue
            oldest_open = session.scalar(select(func.min(FlaggedPost.flagged_at)).where(open_items))
            oldest_claim = session.scalar(select(func.min(FlaggedPost.claimed_at)).where(claimed_live))
            yield GaugeMetricFamily("flarewatch_queue_oldest_open_seconds",
                                    "How long the longest-waiting open flagged post has waited",
                                    value=_age(now, oldest_open))
            yield GaugeMetricFamily("flarewatch_claim_oldest_age_seconds", "Age of the oldest live claim",
                                    value=_age(now, oldest_claim))

            incidents = GaugeMetricFamily("flarewatch_incidents_open", "Open incidents by severity",
                                          labels=["severity"])
            for severity, count in session.execute(
                    select(Incident.severity, func.count()).where(Incident.status == "open")
                    .group_by(Incident.severity).order_by(Incident.severity)):
                incidents.add_metric([str(severity)], count)
            yield incidents

            alerts = CounterMetricFamily("flarewatch_alerts", "Alert messages by channel and final outcome "
                                         "(sent, failed)", labels=["channel", "status"])
            waiting = GaugeMetricFamily("flarewatch_alerts_pending", "Alert messages not sent yet, by channel",
                                        labels=["channel"])
            by_channel: dict[str, dict[str, int]] = {}
            for channel, status, count in session.execute(
                    select(OutboxMessage.channel, OutboxMessage.status, func.count())
                    .group_by(OutboxMessage.channel, OutboxMessage.status)):
                by_channel.setdefault(channel, {})[status] = count
            for channel, statuses in sorted(by_channel.items()):
                alerts.add_metric([channel, "sent"], statuses.get("sent", 0))
                alerts.add_metric([channel, "failed"], statuses.get("failed", 0))
                waiting.add_metric([channel], statuses.get("pending", 0) + statuses.get("sending", 0))
            yield alerts
            yield waiting

            status_gauge = GaugeMetricFamily("flarewatch_source_status", "1 for each source's current status",
                                             labels=["source", "status"])
            fetched = CounterMetricFamily("flarewatch_source_posts_fetched", "Posts fetched by the source, all time "
                                          "(stored in the database)", labels=["source"])
            last_post = GaugeMetricFamily("flarewatch_source_last_post_timestamp_seconds",
                                          "When the source last brought a new post (unix time)", labels=["source"])
            for source in sources_with_status(session, self.config.sources(), now, connector_mode):
                for state in SourceState:
                    status_gauge.add_metric([source.name, state], 1.0 if state == source.status else 0.0)
                row = source.row
                fetched.add_metric([source.name], (row.posts_fetched or 0) if row else 0)
                if row is not None and row.last_post_at is not None:
                    last_post.add_metric([source.name], row.last_post_at.timestamp())
            yield status_gauge
            yield fetched
            yield last_post

            # Replicas sharing this database (monitor.core.leases): who is alive and who holds what.
            dialect = session.get_bind().dialect.name
            shown = replicas(self.sessions, dialect, alive_within=self.config.daemon.lease_seconds)
            alive = GaugeMetricFamily("flarewatch_replica_up", "1 for each replica seen within its lease time",
                                      labels=["replica", "roles"])
            held = GaugeMetricFamily("flarewatch_lease_held", "1 for each unexpired lease, by holder",
                                     labels=["lease", "replica"])
            for replica in shown:
                alive.add_metric([replica["id"], ",".join(replica["roles"])], 1.0 if replica["alive"] else 0.0)
                for lease in replica["leases"]:
                    held.add_metric([lease, replica["id"]], 1.0)
            yield alive
            yield held


def exposition(database: CollectorRegistry) -> bytes:
    """This process's counters followed by the database gauges (no name is in both)."""
    return generate_latest(PROCESS) + generate_latest(database)


def database_registry(sessions: sessionmaker[Session], clock: Clock, config: Any) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(sessions, clock, config))
    return registry
