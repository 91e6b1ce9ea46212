"""Shared fixtures: a migrated database on SQLite (always) and on PostgreSQL (when configured).

PostgreSQL tests read the server URL from FLAREWATCH_TEST_PG_URL (set by .ci/run) and each test
session gets its own throwaway database, so parallel runs never see each other's rows.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from monitor.core.storage.db import make_engine, migrate, session_factory

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PG_URL_VAR = "FLAREWATCH_TEST_PG_URL"


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    url = os.environ.get(PG_URL_VAR)
    if not url and os.environ.get("FLAREWATCH_REQUIRE_PG"):
        pytest.fail(f"FLAREWATCH_REQUIRE_PG is set but {PG_URL_VAR} is not")
    if not url:
        pytest.skip(f"PostgreSQL tests need {PG_URL_VAR} (e.g. postgresql://postgres@127.0.0.1:5432/test)")
    return url


@pytest.fixture(scope="session")
def pg_database_url(pg_server_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped afterwards."""
    name = f"flarewatch_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(make_url(pg_server_url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(pg_server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _fresh_engine(url: str) -> Engine:
    engine = make_engine(url)
    migrate(engine)
    return engine


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'flarewatch.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database URL, once per backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'flarewatch.db'}"
        return
    base = request.getfixturevalue("pg_database_url")
    engine = make_engine(base)
    with engine.begin() as conn:  # empty the shared per-session database between tests
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    yield base


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = _fresh_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    """SQLite only, for tests whose subject is not the database."""
    eng = _fresh_engine(sqlite_url)
    yield eng
    eng.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)
