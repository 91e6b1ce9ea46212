"""Storage failures are visible and answered 503 + Retry-After (issue 17 #8); files are private (#9).

A real second connection holds SQLite's write lock; a full disk is the driver's own error
(sqlite3.OperationalError "database or disk is full") raised where the driver would raise it.
"""
from __future__ import annotations

import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

import monitor.core.storage.db as db
from monitor.core.clock import SimulatedClock
from monitor.core.storage.db import make_engine, migrate, session_factory
from monitor.web.app import create_app
from tests.queue_seed import T0, web_config

SHARED = {"Authorization": "Bearer shared-ingest-token"}
POST = [{"id": "p1", "text": "acme lost my parcel", "created_at": "2026-11-23T10:00:00Z"}]


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Engine, TestClient, Path]]:
    monkeypatch.setattr(db, "BUSY_TIMEOUT_MS", 200)  # a writer gives up after 0.2 s instead of 30 s
    monkeypatch.setattr(db, "PROBE_TIMEOUT_MS", 200)
    path = tmp_path / "var" / "flarewatch.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    with TestClient(create_app(web_config(), session_factory(engine), SimulatedClock(T0)),
                    raise_server_exceptions=False) as client:
        yield engine, client, path
    engine.dispose()


def _assert_503(response: Any) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "10"
    assert response.json()["error"]["code"] == "unavailable" and "retry" in response.json()["error"]["message"]


def test_a_held_write_lock_is_503_for_senders_and_fails_healthz(store, monkeypatch) -> None:
    engine, client, path = store
    assert client.get("/healthz").json()["checks"]["storage"]["ok"] is True
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holding the write lock
    try:
        _assert_503(client.post("/api/ingest/acme-hook", json=POST, headers=SHARED))
        health = client.get("/healthz").json()
        assert health["ok"] is False and health["status"] == "degraded"
        storage = health["checks"]["storage"]
        assert storage["ok"] is False and "locked" in storage["error"]
        assert [r["code"] for r in health["reasons"]] == ["storage_failing"]
        assert health["checks"]["database"]["ok"] is True  # SELECT 1 alone would have said all is well
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert client.post("/api/ingest/acme-hook", json=POST, headers=SHARED).json()["stored"] == 1
    recent = client.get("/healthz").json()["checks"]["storage"]
    assert recent["ok"] is False and "locked" in recent["last_failure"]["error"]  # it failed a moment ago
    monkeypatch.setattr(db, "RECENT_FAILURE_SECONDS", 0.0)
    assert client.get("/healthz").json()["checks"]["storage"]["ok"] is True


def test_a_full_disk_is_503_for_senders_and_fails_healthz(store) -> None:
    engine, client, _ = store

    def full(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE")):
            raise sqlite3.OperationalError("database or disk is full")

    event.listen(engine, "before_cursor_execute", full)
    try:
        _assert_503(client.post("/api/ingest/acme-hook", json=POST, headers=SHARED))
        health = client.get("/healthz").json()
        assert health["ok"] is False and "disk is full" in health["checks"]["storage"]["error"]
    finally:
        event.remove(engine, "before_cursor_execute", full)


def test_pages_get_503_too_not_a_bare_500(store) -> None:
    engine, client, path = store
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        response = client.get("/login")  # writes the anonymous session (its CSRF token)
        assert response.status_code == 503 and response.headers["Retry-After"] == "10"
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_database_wal_and_data_dir_are_private(store) -> None:
    engine, client, path = store
    client.post("/api/ingest/acme-hook", json=POST, headers=SHARED)
    with engine.connect() as conn:  # WAL and shared-memory files exist while a connection is open
        conn.exec_driver_sql("SELECT 1")
        for name in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            assert stat.S_IMODE(name.stat().st_mode) == 0o600, name
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
