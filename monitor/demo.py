"""`flarewatch demo`: the whole product on a bundled crisis, offline, in about a minute.

Two days of synthetic posts about "Acme" (see `monitor.demo_stream`) go through the real
pipeline (ingest, the bundled model, buckets, detectors, incidents, the alert outbox and the
console sender) on a simulated clock that runs a minute per tick. The alerts print as they would
have been sent, and a summary tells how early the crisis was caught.
"""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import typer
from rich.console import Console
from sqlalchemy.orm import Session, sessionmaker

from monitor.core.clock import SimulatedClock

console = Console(highlight=False)


def demo_command(
    keep: Path = typer.Option(None, "--keep", help="Keep the demo database at this SQLite file to explore it."),
    days: float = typer.Option(2.0, min=1.0, max=14.0, help="Days of simulated posts."),
) -> None:
    """Replay a bundled crisis through the real pipeline and show the alerts it raises."""
    from alerts.delivery import deliver_pending, senders_for
    from alerts.escalation import escalate_due
    from alerts.settings import AlertSettings
    from connectors.records import post_from_record
    from models import ModelSettings, load_scorer
    from monitor.config import parse_config
    from monitor.demo_stream import BRAND, crisis_start, generate
    from monitor.replay import replay

    config = parse_config({"brands": [{"name": BRAND, "terms": [BRAND]}]}, "<demo>", env={})
    alerts = AlertSettings()  # console alerts, whatever the environment says
    posts = sorted((post_from_record("demo", record) for record in generate(days)), key=lambda p: p.created_at)
    console.print(f"[bold]flarewatch demo[/]: {len(posts)} posts about {BRAND} over {days:g} days, "
                  "scored by the bundled model; alerts print below as the simulated clock reaches them.\n")
    with console.status("loading the bundled sentiment model"):
        scorer = load_scorer(ModelSettings())
    senders = senders_for(alerts)

    def deliver(sessions: sessionmaker[Session], clock: SimulatedClock) -> None:
        escalate_due(sessions, alerts, clock)
        deliver_pending(sessions, senders, clock)

    db_url = f"sqlite:///{keep.resolve()}" if keep else None
    result = replay(posts, config, scorer, db_url=db_url, on_tick=deliver)
    _summary(result.incidents, crisis_start(), len(posts), keep)


def _summary(incidents: list[dict], crisis_at, total: int, keep: Path | None) -> None:  # noqa: ANN001
    from datetime import datetime

    console.rule("summary")
    console.print(f"{total} posts replayed; {len(incidents)} incident(s).")
    caught = [i for i in incidents if datetime.fromisoformat(i["detected_at"]) >= crisis_at]
    if caught:
        first = min(datetime.fromisoformat(i["detected_at"]) for i in caught)
        minutes = (first - crisis_at) / timedelta(minutes=1)
        console.print(f"The crisis started at {crisis_at:%Y-%m-%d %H:%M} UTC and was detected "
                      f"[bold]{minutes:.0f} minutes[/] later.")
    else:
        console.print("[red]The crisis was not detected.[/]")
    if keep:
        console.print(f"The database is kept at {keep}: try `flarewatch web` with a config pointing at it.")
