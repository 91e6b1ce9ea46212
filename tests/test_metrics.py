"""GET /metrics: Prometheus text format, read back with prometheus-client's own parser."""
from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from monitor.config import parse_config
from monitor.core.clock import SimulatedClock
from monitor.core.storage.db import session_factory, transaction
from monitor.core.storage.schema import FlaggedPost, OutboxMessage, Source
from monitor.web.app import create_app
from tests.queue_seed import T0, add_incident, add_post


def scrape(client: TestClient, headers: dict[str, str] | None = None) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", headers=headers or {})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def _config(tmp_path, **web):
    return parse_config({"web": {"session_secret": "s" * 32, "ingest_token": "push-token", **web},
                         "brands": [{"name": "acme", "terms": ["acme"], "sources": [
                             {"name": "acme-hook", "kind": "webhook"},
                             {"name": "acme-feed", "kind": "jsonl", "params": {"path": str(tmp_path / "none.jsonl")}},
                         ]}]}, env={})


def test_metrics_report_the_database_state_and_this_process_counters(sqlite_engine, tmp_path) -> None:
    sessions = session_factory(sqlite_engine)
    clock = SimulatedClock(T0)
    config = _config(tmp_path)
    with transaction(sessions) as s:
        incident = add_incident(s, severity=3)
        add_incident(s, severity=1)
        first = add_post(s, at=T0 - timedelta(minutes=5))
        first.pending = True
        second = add_post(s, at=T0)
        s.add(FlaggedPost(post_id=first.id, brand="acme", incident_id=incident.id, reason="negative", urgency=1.0,
                          state="open", flagged_at=T0 - timedelta(minutes=10)))
        s.add(FlaggedPost(post_id=second.id, brand="acme", incident_id=incident.id, reason="negative", urgency=1.0,
                          state="claimed", flagged_at=T0, claimed_by="alice", claimed_at=T0 - timedelta(minutes=3),
                          claim_expires_at=T0 + timedelta(minutes=27)))
        for i, (channel, status) in enumerate([("slack", "sent"), ("slack", "sent"), ("slack", "failed"),
                                               ("webhook", "pending")]):
            s.add(OutboxMessage(idempotency_key=f"k{i}", incident_id=incident.id, channel=channel, target="x",
                                kind="parent", payload={}, status=status, attempts=1, created_at=T0,
                                next_attempt_at=T0))
    app = create_app(config, sessions, clock)
    with TestClient(app) as client:
        before = scrape(client)
        pushed = client.post("/api/ingest/acme-hook", headers={"Authorization": "Bearer push-token"},
                             json=[{"id": "p1", "text": "acme is down", "created_at": T0.isoformat()},
                                   {"id": "p2", "text": "acme again", "created_at": T0.isoformat()}])
        assert pushed.status_code == 200, pushed.text
        from monitor.polling import poll_source

        async def poll() -> None:
            async with httpx.AsyncClient() as http:
                brand = config.brands[0]
                await poll_source(sessions, brand, brand.sources[1], http, clock)

        asyncio.run(poll())  # the jsonl file does not exist: a fetch error
        after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta("flarewatch_posts_fetched_total", source="acme-hook") == 2
    assert delta("flarewatch_posts_stored_total", source="acme-hook") == 2
    assert delta("flarewatch_fetch_errors_total", source="acme-feed") == 1
    assert after[("flarewatch_posts_pending", ())] == 3  # the seeded one and the two pushed
    assert after[("flarewatch_scoring_lag_seconds", ())] == 300
    assert after[("flarewatch_queue_items", (("state", "open"),))] == 1
    assert after[("flarewatch_queue_items", (("state", "claimed"),))] == 1
    assert after[("flarewatch_queue_oldest_open_seconds", ())] == 600
    assert after[("flarewatch_claim_oldest_age_seconds", ())] == 180
    assert after[("flarewatch_incidents_open", (("severity", "3"),))] == 1
    assert after[("flarewatch_incidents_open", (("severity", "1"),))] == 1
    assert after[("flarewatch_alerts_total", (("channel", "slack"), ("status", "sent")))] == 2
    assert after[("flarewatch_alerts_total", (("channel", "slack"), ("status", "failed")))] == 1
    assert after[("flarewatch_alerts_pending", (("channel", "webhook"),))] == 1
    assert after[("flarewatch_source_status", (("source", "acme-hook"), ("status", "ok")))] == 1
    assert after[("flarewatch_source_status", (("source", "acme-feed"), ("status", "failing")))] == 1
    assert after[("flarewatch_source_last_post_timestamp_seconds", (("source", "acme-hook"),))] == T0.timestamp()
    with transaction(sessions) as s:
        assert s.get(Source, "acme-hook").posts_fetched == 2
    assert after[("flarewatch_source_posts_fetched_total", (("source", "acme-hook"),))] == 2


def test_job_metrics_and_the_bearer_token(sqlite_engine, tmp_path) -> None:
    from monitor.metrics import JOB_FAILURES, JOB_SECONDS

    JOB_SECONDS.labels("detect").observe(0.2)
    JOB_FAILURES.labels("detect").inc()
    sessions = session_factory(sqlite_engine)
    app = create_app(_config(tmp_path, metrics_token="scrape-me"), sessions, SimulatedClock(T0))
    with TestClient(app) as client:
        refused = client.get("/metrics")
        assert refused.status_code == 401 and refused.json()["error"]["code"]
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        samples = scrape(client, {"Authorization": "Bearer scrape-me"})
    assert samples[("flarewatch_job_duration_seconds_count", (("job", "detect"),))] >= 1
    assert samples[("flarewatch_job_failures_total", (("job", "detect"),))] >= 1
    assert "/metrics" in app.openapi()["paths"]


def test_the_grafana_dashboard_only_uses_metrics_we_export() -> None:
    import json
    import re
    from pathlib import Path

    dashboard = json.loads((Path(__file__).resolve().parents[1] / "config" / "grafana-dashboard.json").read_text())
    exported = {"flarewatch_posts_fetched_total", "flarewatch_posts_stored_total", "flarewatch_fetch_errors_total",
                "flarewatch_posts_scored_total", "flarewatch_job_duration_seconds_bucket",
                "flarewatch_job_failures_total", "flarewatch_posts_pending", "flarewatch_scoring_lag_seconds",
                "flarewatch_queue_items", "flarewatch_queue_oldest_open_seconds", "flarewatch_claim_oldest_age_seconds",
                "flarewatch_incidents_open", "flarewatch_alerts_total", "flarewatch_alerts_pending",
                "flarewatch_source_status", "flarewatch_source_posts_fetched_total",
                "flarewatch_source_last_post_timestamp_seconds"}
    used = {name for panel in dashboard["panels"] for target in panel["targets"]
            for name in re.findall(r"flarewatch_[a-z_]+", target["expr"])}
    assert used and used <= exported, used - exported
