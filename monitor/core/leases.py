"""Leases: which replica does a piece of shared work (poll a source, detect a brand) until when.

A lease is one row in `leases` (name, holder, expiry). Taking or renewing it is one upsert,
`INSERT ... ON CONFLICT (name) DO UPDATE ... WHERE holder = me OR expired`, so it succeeds for
exactly one replica: the row lock serialises racing replicas and the loser's condition is
re-checked against the winner's committed row. Times come from the database's clock (epoch
seconds), so replicas whose own clocks disagree still agree on expiry.

Two uses:

* `try_take(name)` in its own transaction: "should I do this work now?" (liveness). A replica
  that dies stops renewing; its leases expire after `ttl` and another replica takes them.
* `fence(session, name)` inside the transaction that writes the work's result (a page of posts
  and its cursor, a detect run's incidents): it renews the lease and holds its row lock until
  commit, so a replica that lost its lease while it was stalled (a long GC pause, a slow fetch)
  cannot write a stale result after the new holder has written its own (safety).

SQLite is single-process (`monitor.daemon` refuses a second daemon on a file), so there the
lease is always this process's, but the same statements run, so both databases test one code.
"""
from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Engine, case, delete, literal_column, select
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.dml import ReturningInsert

from monitor.core.storage.db import affected, transaction, upsert_insert
from monitor.core.storage.schema import Lease, Replica


class LeaseLost(Exception):
    """Another replica holds the work's lease now: stop without writing."""


def db_epoch(dialect: str) -> ColumnElement[float]:
    """The database's current time in epoch seconds (not the transaction's start time)."""
    if dialect == "postgresql":
        return literal_column("extract(epoch from clock_timestamp())::float8")
    return literal_column("((julianday('now') - 2440587.5) * 86400.0)")


def new_replica_id() -> str:
    """host:pid:random, readable in /healthz and unique across restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class HeldLease:
    name: str
    holder: str
    acquired_at: float
    expires_in: float  # seconds; negative: expired, free for the taking


class Leases:
    """The leases of one replica (`holder`), each lasting `ttl` seconds unless renewed."""

    def __init__(self, sessions: sessionmaker[Session], holder: str, ttl: float) -> None:
        self.sessions, self.holder, self.ttl = sessions, holder, ttl
        bind = sessions.kw.get("bind")
        self.dialect = bind.dialect.name if isinstance(bind, Engine) else "sqlite"

    def _upsert(self, name: str, ttl: float) -> ReturningInsert[tuple[str]]:
        now = db_epoch(self.dialect)
        stmt = upsert_insert(self.dialect, Lease).values(name=name, holder=self.holder, acquired_at=now, expires_at=now + ttl)
        mine = Lease.holder == stmt.excluded.holder
        return stmt.on_conflict_do_update(
            index_elements=[Lease.name],
            set_={"holder": stmt.excluded.holder, "expires_at": stmt.excluded.expires_at,
                  "acquired_at": case((mine, Lease.acquired_at), else_=stmt.excluded.acquired_at)},
            where=mine | (Lease.expires_at < stmt.excluded.acquired_at),
        ).returning(Lease.holder)

    def fence(self, session: Session, name: str, ttl: float | None = None) -> bool:
        """Take or renew `name` in the caller's transaction; False when another replica holds it.

        While the caller's transaction is open, the lease row stays locked: nobody can take it
        before this transaction's writes are committed (or rolled back).
        """
        return session.execute(self._upsert(name, self.ttl if ttl is None else ttl)).first() is not None

    def try_take(self, name: str, ttl: float | None = None) -> bool:
        """Take or renew `name` in its own transaction; False when another replica holds it.

        A plain read first, so replicas that do not hold a live lease never queue on its row lock.
        """
        with transaction(self.sessions) as session:
            now = session.scalar(select(db_epoch(self.dialect)))
            row = session.get(Lease, name)
            if row is not None and row.holder != self.holder and now is not None and row.expires_at >= now:
                return False
            return self.fence(session, name, ttl)

    def release(self, name: str) -> None:
        with transaction(self.sessions) as session:
            session.execute(delete(Lease).where(Lease.name == name, Lease.holder == self.holder))

    def release_all(self) -> int:
        """On a clean stop: hand everything over at once instead of after `ttl`."""
        with transaction(self.sessions) as session:
            return affected(session.execute(delete(Lease).where(Lease.holder == self.holder)))

    def all(self) -> list[HeldLease]:
        with self.sessions() as session:
            now = session.scalar(select(db_epoch(self.dialect))) or 0.0
            return [HeldLease(r.name, r.holder, r.acquired_at, round(r.expires_at - now, 3))
                    for r in session.scalars(select(Lease).order_by(Lease.name))]


def heartbeat(sessions: sessionmaker[Session], replica_id: str, roles: str, dialect: str,
              forget_after: float) -> None:
    """Record that this replica is alive (and which roles it runs); forget replicas silent for long."""
    now = db_epoch(dialect)
    stmt = upsert_insert(dialect, Replica).values(id=replica_id, host=socket.gethostname(), pid=os.getpid(), roles=roles,
                                  started_at=now, seen_at=now)
    upsert = stmt.on_conflict_do_update(index_elements=[Replica.id],
                                        set_={"seen_at": stmt.excluded.seen_at, "roles": stmt.excluded.roles})
    with transaction(sessions) as session:
        session.execute(upsert)
        session.execute(delete(Replica).where(Replica.seen_at < now - forget_after))


def leave(sessions: sessionmaker[Session], replica_id: str) -> None:
    with transaction(sessions) as session:
        session.execute(delete(Replica).where(Replica.id == replica_id))


def replicas(sessions: sessionmaker[Session], dialect: str, alive_within: float) -> list[dict[str, Any]]:
    """The replicas seen recently, each with the leases it holds: what /healthz and /metrics show."""
    with sessions() as session:
        now = session.scalar(select(db_epoch(dialect))) or 0.0
        held: dict[str, list[str]] = {}
        for lease in session.scalars(select(Lease).where(Lease.expires_at >= now).order_by(Lease.name)):
            held.setdefault(lease.holder, []).append(lease.name)
        return [{
            "id": r.id, "host": r.host, "pid": r.pid, "roles": r.roles.split(",") if r.roles else [],
            "seen_s_ago": round(now - r.seen_at, 1), "alive": now - r.seen_at <= alive_within,
            "up_s": round(now - r.started_at, 1), "leases": held.get(r.id, []),
        } for r in session.scalars(select(Replica).order_by(Replica.started_at))]


