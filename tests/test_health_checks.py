"""/healthz's sources and jobs checks: every polling source failing, a stale source, a failing job."""
from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from monitor.config import parse_config
from monitor.core.clock import SimulatedClock
from monitor.core.storage.db import session_factory, transaction
from monitor.core.storage.schema import Source
from monitor.web.app import create_app
from tests.queue_seed import T0


def _app(sqlite_engine, tmp_path, daemon=None):
    sessions = session_factory(sqlite_engine)
    config = parse_config({"web": {"session_secret": "s" * 32}, "brands": [{"name": "acme", "terms": ["acme"], "sources": [
        {"name": "feed-a", "kind": "jsonl", "params": {"path": str(tmp_path / "a.jsonl")}},
        {"name": "feed-b", "kind": "jsonl", "params": {"path": str(tmp_path / "b.jsonl")}, "stale_after_minutes": 30},
        {"name": "hook", "kind": "webhook", "stale_after_minutes": 10},
    ]}]}, env={})
    clock = SimulatedClock(T0)
    return TestClient(create_app(config, sessions, clock, health=(lambda: daemon) if daemon else None)), sessions, clock


def _source(name: str, kind: str = "jsonl", **fields) -> Source:
    values = {"consecutive_failures": 0, "posts_fetched": 0, "items_rejected": 0, **fields}
    return Source(name=name, brand="acme", kind=kind, **values)


def test_every_polling_source_failing_is_degraded(sqlite_engine, tmp_path) -> None:
    client, sessions, _ = _app(sqlite_engine, tmp_path)
    with transaction(sessions) as s:
        s.add_all([_source("feed-a", consecutive_failures=3, last_error="HTTP 503"),
                   _source("feed-b", consecutive_failures=1, last_error="timeout"),
                   _source("hook", kind="webhook", last_post_at=T0)])
    body = client.get("/healthz").json()
    assert body["status"] == "degraded"
    assert [r["code"] for r in body["reasons"]] == ["all_sources_failing", "source_failing", "source_failing"]
    assert body["reasons"][1]["message"] == "source feed-a is failing: HTTP 503"
    assert body["checks"]["sources"]["status"] == {"feed-a": "failing", "feed-b": "failing", "hook": "ok"}


def test_a_silent_source_goes_stale_after_its_stale_after(sqlite_engine, tmp_path) -> None:
    client, sessions, clock = _app(sqlite_engine, tmp_path)
    with transaction(sessions) as s:  # feed-b polls fine but brings nothing new; the hook got a post 5 min ago
        s.add_all([_source("feed-a", last_success_at=T0, last_post_at=T0 - timedelta(days=3)),
                   _source("feed-b", last_success_at=T0, last_post_at=T0 - timedelta(minutes=31)),
                   _source("hook", kind="webhook", last_post_at=T0 - timedelta(minutes=5))])
    body = client.get("/healthz").json()
    assert body["checks"]["sources"]["status"] == {"feed-a": "ok", "feed-b": "stale", "hook": "ok"}
    clock.advance(timedelta(minutes=6))
    statuses = client.get("/healthz").json()["checks"]["sources"]["status"]
    assert statuses["hook"] == "stale" and statuses["feed-a"] == "stale"  # 6 min without a successful poll


def test_a_failing_job_is_degraded_and_a_broken_check_is_reported(sqlite_engine, tmp_path) -> None:
    daemon = {"started_at": T0.isoformat(), "jobs": {"detect": {"runs": 4, "failures": 1, "last_error": "ValueError: x"},
                                                    "score": {"runs": 9, "failures": 0, "last_error": None}},
              "alerts": {"slack_auth": None}}
    client, _, _ = _app(sqlite_engine, tmp_path, daemon)
    body = client.get("/healthz").json()
    assert body["checks"]["jobs"]["ok"] is False
    assert {"check": "jobs", "code": "job_failing", "message": "job detect failed: ValueError: x"} in body["reasons"]
    assert body["daemon"]["jobs"]["score"]["runs"] == 9
