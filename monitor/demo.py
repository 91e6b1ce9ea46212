"""`flarewatch demo`: the whole product on a bundled crisis, offline, in about a minute.

Two days of synthetic posts about "Acme" (see `monitor.demo_stream`) go through the real
pipeline (ingest, the bundled model, buckets, detectors, incidents, the alert outbox and the
console sender) on a simulated clock that runs a minute per tick. The alerts print as they would
have been sent, and a summary tells how early the crisis was caught.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import typer
from rich.console import Console
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from monitor.core.clock import SimulatedClock
from monitor.reports.figures import format_duration

console = Console(highlight=False)


DEFAULT_KEEP = Path("var/demo/demo.db")
DEMO_USER = "demo"


def demo_command(
    keep: Path = typer.Option(DEFAULT_KEEP, "--keep",
                              help="Where to keep the demo database (SQLite); a config for `flarewatch web` is "
                                   "written next to it."),
    days: float = typer.Option(2.0, min=1.0, max=14.0, help="Days of simulated posts."),
) -> None:
    """Replay a bundled crisis through the real pipeline, show the alerts it raises, and leave a
    database, a config and an account to explore the result in the web app."""
    from alerts.delivery import deliver_pending
    from alerts.senders import build_senders
    from alerts.escalation import escalate_due
    from alerts.settings import AlertSettings
    from connectors.records import post_from_record
    from models import ModelSettings, load_scorer
    from monitor.config import parse_config
    from monitor.demo_stream import BRAND, crisis_start, generate
    from monitor.replay import replay

    keep = keep.resolve()
    if keep.exists():
        if keep != DEFAULT_KEEP.resolve():  # never overwrite a file the person named
            typer.echo(f"error: {keep} already exists; delete it or choose another --keep path", err=True)
            raise typer.Exit(2)
        for stale in (keep, keep.with_name(keep.name + "-wal"), keep.with_name(keep.name + "-shm")):
            stale.unlink(missing_ok=True)
    keep.parent.mkdir(parents=True, exist_ok=True)
    config = parse_config({"brands": [{"name": BRAND, "terms": [BRAND]}]}, "<demo>", env={})
    alerts = AlertSettings()  # console alerts, whatever the environment says
    posts = sorted((post_from_record("demo", record) for record in generate(days)), key=lambda p: p.created_at)
    console.print(f"[bold]flarewatch demo[/]: {len(posts)} posts about {BRAND} over {days:g} days, "
                  "scored by the bundled model; alerts print below as the simulated clock reaches them.\n")
    with console.status("loading the bundled sentiment model"):
        scorer = load_scorer(ModelSettings())
    senders = build_senders(alerts)

    def deliver(sessions: sessionmaker[Session], clock: SimulatedClock) -> None:
        escalate_due(sessions, alerts, clock)
        deliver_pending(sessions, senders, clock)

    replay(posts, config, scorer, db_url=f"sqlite:///{keep}", on_tick=deliver)
    _summary(keep, crisis_start(days), len(posts), BRAND)


def _summary(db: Path, crisis_at: datetime, total: int, brand: str) -> None:
    """How early the crisis was caught, in the web report's own figures, and the one command to explore it."""
    from monitor.reports.figures import incident_figures
    from monitor.core.storage.db import make_engine, session_factory, transaction
    from monitor.core.storage.schema import Incident

    engine = make_engine(f"sqlite:///{db}")
    try:
        with transaction(session_factory(engine)) as session:
            incidents = list(session.scalars(select(Incident).order_by(Incident.opened_at, Incident.id)))
            caught = next((i for i in incidents if i.opened_at >= crisis_at and not (i.detail or {}).get("merged_into")),
                          None)
            figures = incident_figures(session, caught.id) if caught else None
            password = _demo_account(session, db)
    finally:
        engine.dispose()
    console.rule("summary")
    console.print(f"{total} posts replayed; {len(incidents)} incident(s).")
    if caught is None or figures is None:
        console.print("[red]The crisis was not detected.[/]")
    else:
        alert = figures.first_alert_at or figures.detected_at
        late = (alert - crisis_at) / timedelta(minutes=1)
        console.print(
            f"The complaint began at {crisis_at:%H:%M} UTC (the demo's script). The first alert went out at "
            f"{alert:%H:%M} UTC, [bold]{late:.0f} minutes later[/]. The incident report counts from "
            f"detection's own estimate of when the rise began ({figures.started_at:%H:%M:%S} UTC): its time to "
            f"detect (estimated start to first alert) is {format_duration(figures.time_to_detect)}.")
    config = _demo_config(db, brand)
    where = f"/incidents/{caught.id}" if caught else "/incidents"
    console.print("\nExplore the result in the web app (Ctrl-C stops it):\n")
    console.print(f"    flarewatch web --config {config}\n", markup=False, soft_wrap=True)  # copied, so never wrapped
    console.print(f"then open http://127.0.0.1:8080{where} and log in as [bold]{DEMO_USER}[/] with password "
                  f"[bold]{password}[/] (an admin account made for this demo database).")


def _demo_account(session: Session, db: Path) -> str:
    """An admin account on the demo database, with a fresh password each run (kept beside the database)."""
    import secrets

    from monitor.core import accounts
    from monitor.core.clock import SystemClock

    password = secrets.token_urlsafe(9)
    user = accounts.get_user(session, DEMO_USER)
    if user is None:
        user = accounts.create_user(session, DEMO_USER, "admin", password, SystemClock().now())
    else:
        user.password_hash = accounts.hash_password(password)
    return password


def _demo_config(db: Path, brand: str) -> Path:
    """A configuration for `flarewatch web` on the demo database (no sources: nothing is polled)."""
    path = db.with_suffix(".toml")
    path.write_text(
        "# Written by `flarewatch demo`: the web app on the demo's database.\n"
        f"[daemon]\ndata_dir = {_toml_string(str(db.parent))}\n\n"
        f"[database]\nurl = {_toml_string('sqlite:///' + str(db))}\n\n"
        f"[[brands]]\nname = {_toml_string(brand)}\nterms = [{_toml_string(brand)}]\n",
        encoding="utf-8")
    return path


def _toml_string(value: str) -> str:
    import json

    return json.dumps(value)  # a JSON string is a valid TOML basic string
