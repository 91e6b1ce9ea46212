"""`GET /healthz`: one answer monitoring can read, true about sources, jobs and alert delivery.

Shape (stable; new checks only add keys):

    {"ok": false, "status": "degraded",            # ok | degraded | down
     "reasons": [{"check": "alerts", "code": "alerts_failing",
                  "message": "slack C0ALERTS01: Slack refused the message: invalid_auth"}],
     "checks": {"database": {"ok": true},
                "sources": {"ok": true, "counts": {...}, "status": {"name": "ok", ...}},
                "jobs": {"ok": true, "in_process": true, "jobs": {...}},
                "alerts": {"ok": false, "problems": [...], "slack_auth": {...} | null}},
     "daemon": {"started_at": ..., "jobs": {...}}}  # when the daemon serves the app

`ok` is true only when every check is; `status` is `down` (HTTP 503) when the database cannot be
reached, else `degraded` or `ok` (HTTP 200: the process is alive and serving, so a liveness probe
does not restart it for a Slack outage; alert on `ok`/`status` instead). A check is a function
`(HealthContext) -> Check`; add one to `CHECKS`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from alerts.health import delivery_problems
from connectors.registry import connector_mode
from monitor.core.sources import BAD_STATES, FAILED_STATES, SourceState, sources_with_status
from monitor.core.storage.db import check_storage, transaction
from monitor.config import Config
from monitor.core.clock import Clock
from monitor.web.state import HealthProvider


@dataclass(frozen=True)
class Reason:
    check: str
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"check": self.check, "code": self.code, "message": self.message}


@dataclass
class Check:
    ok: bool
    detail: dict[str, Any] = field(default_factory=dict)
    reasons: list[Reason] = field(default_factory=list)


@dataclass(frozen=True)
class HealthContext:
    config: Config
    sessions: sessionmaker[Session]  # for the storage check's own write
    session: Session  # the checks' shared read transaction
    now: datetime
    daemon: dict[str, Any] | None  # the daemon's in-process view, when it serves this app


def sources_check(ctx: HealthContext) -> Check:
    sources = sources_with_status(ctx.session, ctx.config.sources(), ctx.now, connector_mode)
    counts = {state.value: sum(1 for s in sources if s.status == state) for state in SourceState}
    reasons = []
    polled = [s for s in sources if s.enabled and s.mode != "push"]
    if polled and all(s.status in FAILED_STATES for s in polled):
        reasons.append(Reason("sources", "all_sources_failing", f"every polling source is failing ({len(polled)})"))
    bad = sorted((s for s in sources if s.status in BAD_STATES), key=lambda s: s.name)
    for s in bad:
        error = s.row.last_error if s.row is not None and s.status in FAILED_STATES else None
        why = f": {error[:200]}" if error else ""
        reasons.append(Reason("sources", f"source_{s.status}", f"source {s.name} is {s.status}{why}"))
    return Check(not bad, {"counts": counts, "status": {s.name: s.status.value for s in sources}}, reasons)


def jobs_check(ctx: HealthContext) -> Check:
    if ctx.daemon is None:
        return Check(True, {"in_process": False})
    jobs = ctx.daemon.get("jobs", {})
    reasons = [Reason("jobs", "job_failing", f"job {name} failed: {(job.get('last_error') or '')[:200]}")
               for name, job in sorted(jobs.items()) if isinstance(job, dict) and job.get("last_error")]
    return Check(not reasons, {"in_process": True, "jobs": jobs}, reasons)


def alerts_check(ctx: HealthContext) -> Check:
    problems = delivery_problems(ctx.session, ctx.now)
    reasons = []
    for p in problems:
        if p.status == "failed":
            reasons.append(Reason("alerts", "alerts_failing", f"{p.place}: {p.error or 'failed'}"))
        else:
            waited = int((ctx.now - p.since).total_seconds() // 60)
            reasons.append(Reason("alerts", "alerts_stuck", f"{p.place}: alerts waiting for {waited} min"
                                  + (f" ({p.error})" if p.error else "")))
    auth = (ctx.daemon or {}).get("alerts", {}).get("slack_auth")
    if isinstance(auth, dict) and not auth.get("ok"):
        reasons.insert(0, Reason("alerts", "slack_auth_failed", str(auth.get("error") or "Slack auth.test failed")))
    return Check(not reasons, {"problems": [p.as_dict() for p in problems], "slack_auth": auth}, reasons)


def storage_check(ctx: HealthContext) -> Check:
    """A real write, and the last storage failure (SELECT 1 passes through a held write lock and a full disk)."""
    detail = check_storage(ctx.sessions, ctx.now)
    ok = bool(detail.pop("ok"))
    why = detail.get("error") or (detail.get("last_failure") or {}).get("error") or "storage failed"
    return Check(ok, detail, [] if ok else [Reason("storage", "storage_failing", f"writes fail: {why}"[:300])])


CHECKS: dict[str, Callable[[HealthContext], Check]] = {
    "sources": sources_check, "jobs": jobs_check, "alerts": alerts_check, "storage": storage_check,
}


def health_report(config: Config, sessions: sessionmaker[Session], clock: Clock,
                  health: HealthProvider | None = None) -> tuple[dict[str, Any], int]:
    """The /healthz body and HTTP status (see the module docstring); `flarewatch health` calls it too."""
    daemon: dict[str, Any] | None = None
    body: dict[str, Any] = {}
    if health is not None:
        try:
            daemon = health()
            body["daemon"] = daemon
        except Exception as exc:  # noqa: BLE001 - reported, not raised: this is the health check
            body["daemon"] = {"error": str(exc)[:300]}
    checks: dict[str, Check] = {}
    try:
        with transaction(sessions) as session:
            session.execute(text("SELECT 1"))
            checks["database"] = Check(True)
            ctx = HealthContext(config, sessions, session, clock.now(), daemon)
            for name, check in CHECKS.items():
                try:
                    checks[name] = check(ctx)
                except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
                    checks[name] = Check(False, {"error": f"{type(exc).__name__}: {str(exc)[:300]}"},
                                         [Reason(name, "check_error", f"{name} check failed: {type(exc).__name__}")])
    except Exception as exc:  # noqa: BLE001
        checks["database"] = Check(False, {"error": f"{type(exc).__name__}: {str(exc)[:300]}"},
                                   [Reason("database", "database_unreachable", "the database cannot be reached")])
    down = not checks["database"].ok
    ok = all(c.ok for c in checks.values())
    body = {
        "ok": ok, "status": "down" if down else "ok" if ok else "degraded",
        "reasons": [r.as_dict() for c in checks.values() for r in c.reasons],
        "checks": {name: {"ok": c.ok, **c.detail} for name, c in checks.items()},
        **body,
    }
    return body, 503 if down else 200
