"""Engines, sessions and migrations.

SQLite runs in WAL mode with a busy timeout so the scheduler's jobs and the web workers can share
one file; PostgreSQL is used as is. Migrations run at start and are idempotent (Alembic skips
what is already applied). A new SQLite file (and its folder, the data_dir) is created 0600 (0700):
it holds password and token hashes; SQLite gives its -wal and -shm files the database's mode.

Storage health: `transaction()` remembers the last storage failure (OperationalError: a lock held
too long, a full disk, a lost server) per engine, and `check_storage` makes a real write with a
short lock timeout. `/healthz` reports both, so a database that answers SELECT 1 but takes no
writes shows as failing.
"""
from __future__ import annotations

import os
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import CursorResult, Engine, Result, create_engine, event, insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BUSY_TIMEOUT_MS = 30_000  # how long a SQLite writer waits for the lock; read at connect time
PROBE_TIMEOUT_MS = 2_000  # how long the health check's write may wait
RECENT_FAILURE_SECONDS = 60.0  # a storage failure this recent still fails /healthz
STORAGE_ERRORS = (OperationalError, PoolTimeout)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_MS)}")
    cursor.close()


def redact_url(url: str) -> str:
    """A database URL fit to print or log: the password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL: print nothing of it rather than a secret
        return "<unparsable database URL>"


def make_engine(url: str) -> Engine:
    """Create an engine; for a SQLite file, create its folder first."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
            path = Path(parsed.database)
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))  # before SQLite creates it 0644
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        url = str(parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False))
    return create_engine(url, pool_pre_ping=True)


def alembic_config(engine: Engine) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (a no-op when it is already there)."""
    command.upgrade(alembic_config(engine), "head")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@dataclass
class StorageFailure:
    error: str
    at: float  # time.monotonic()


_FAILURES: weakref.WeakKeyDictionary[Engine, StorageFailure] = weakref.WeakKeyDictionary()


def _engine_of(factory: sessionmaker[Session]) -> Engine | None:
    bind = factory.kw.get("bind")
    return bind if isinstance(bind, Engine) else None


def note_storage_failure(engine: Engine | None, exc: BaseException) -> None:
    if engine is not None:
        _FAILURES[engine] = StorageFailure(f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}", time.monotonic())


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work commits together or not at all."""
    try:
        with factory() as session, session.begin():
            yield session
    except STORAGE_ERRORS as exc:  # remembered for /healthz, then raised (the web app answers 503)
        note_storage_failure(_engine_of(factory), exc)
        raise


def _probe_write(engine: Engine, now: datetime) -> None:
    from monitor.core.storage.schema import HealthCheck

    with engine.connect() as conn:
        sqlite = engine.dialect.name == "sqlite"
        try:
            if sqlite:
                conn.exec_driver_sql(f"PRAGMA busy_timeout={PROBE_TIMEOUT_MS}")
            else:
                conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{PROBE_TIMEOUT_MS}ms'")
                conn.exec_driver_sql(f"SET LOCAL statement_timeout = '{2 * PROBE_TIMEOUT_MS}ms'")
            if conn.execute(update(HealthCheck).where(HealthCheck.id == 1).values(checked_at=now)).rowcount == 0:
                conn.execute(insert(HealthCheck).values(id=1, checked_at=now))
            conn.commit()
        finally:
            if sqlite:  # the pooled connection goes back with the normal timeout, or not at all
                try:
                    conn.exec_driver_sql(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_MS)}")
                except Exception:  # noqa: BLE001
                    conn.invalidate()


def check_storage(factory: sessionmaker[Session], now: datetime) -> dict[str, Any]:
    """A real write (one row of health_checks) with a short lock timeout, and the last failure seen.

    `{"ok": bool, "error"?: str, "last_failure"?: {"error", "seconds_ago"}}`; never raises.
    """
    result: dict[str, Any] = {"ok": True}
    engine = _engine_of(factory)
    try:
        if engine is None:
            raise RuntimeError("these sessions are bound to no engine")
        _probe_write(engine, now)
    except Exception as exc:  # noqa: BLE001 - reported, not raised: this is the health check
        note_storage_failure(engine, exc)
        result = {"ok": False, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"}
    failure = _FAILURES.get(engine) if engine is not None else None
    if failure is not None:
        ago = time.monotonic() - failure.at
        result["last_failure"] = {"error": failure.error, "seconds_ago": round(ago, 1)}
        if ago < RECENT_FAILURE_SECONDS:
            result["ok"] = False
    return result


def affected(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE changed. `Session.execute` is typed as returning a plain
    Result; for DML statements it is a CursorResult, the one that counts rows."""
    if not isinstance(result, CursorResult):
        raise TypeError(f"{type(result).__name__} is not the result of an UPDATE or DELETE")
    return result.rowcount or 0


def upsert_insert(dialect: str, model: type[Any]) -> postgresql.Insert | sqlite.Insert:
    """The dialect's INSERT, for the ON CONFLICT clauses (`excluded`, `on_conflict_do_update`)
    PostgreSQL and SQLite share but the generic `sqlalchemy.insert` does not have."""
    return postgresql.insert(model) if dialect == "postgresql" else sqlite.insert(model)


def update_if(session: Session, model: type[Any], *where: Any, **values: Any) -> bool:
    """One conditional UPDATE of one row: True when `where` (key and legal starting state) matched it.

    The database serialises concurrent updates of the row and re-checks the condition, so of two
    people clicking at once exactly one wins; nothing is read first, so no stale snapshot decides.
    """
    result = session.execute(
        update(model).where(*where).values(**values).execution_options(synchronize_session=False)
    )
    return affected(result) == 1
