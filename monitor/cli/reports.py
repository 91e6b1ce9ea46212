"""`flarewatch report incident ID` and `flarewatch report weekly`: the managers' reports from a terminal."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from monitor.cli.common import ConfigOption, open_store
from monitor.core.terminal import plain

app = typer.Typer(help="Incident reports and weekly response figures.", no_args_is_help=True)


def _write(body: str, out: Path | None) -> None:
    if out is None:
        # Whatever the format, a terminal gets no control characters from the strangers' text inside.
        typer.echo(plain(body, keep_lines=True), nl=not body.endswith("\n"))
        return
    try:
        out.write_text(body, encoding="utf-8")
    except OSError as exc:
        typer.echo(f"cannot write {out}: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"wrote {out}", err=True)


@app.command("incident")
def incident_report(
    incident_id: Annotated[int, typer.Argument(help="the incident's id")],
    format: Annotated[str, typer.Option("--format", "-f", help="html (chart included), md or csv")] = "html",
    table: Annotated[str, typer.Option("--table", help="for csv: events or posts")] = "events",
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="write to this file instead of stdout")] = None,
    config: ConfigOption = None,
) -> None:
    """One incident's report: chart, response figures, timeline and posts."""
    from monitor.core.clock import SystemClock
    from monitor.reports.export import render
    from monitor.core.incidents import IncidentNotFound
    from monitor.reports.timeline import load_timeline
    from monitor.core.storage.db import transaction

    if format not in ("html", "md", "csv") or table not in ("events", "posts"):
        typer.echo("--format must be html, md or csv; --table events or posts", err=True)
        raise typer.Exit(2)
    try:
        with open_store(config) as (loaded, sessions), transaction(sessions) as session:
            timeline = load_timeline(session, incident_id, loaded.detection, loaded.brands, SystemClock().now())
        body, _, _ = render(timeline, format, table)
    except IncidentNotFound as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    _write(body, out)


@app.command("weekly")
def weekly_report(
    brand: Annotated[Optional[str], typer.Option("--brand", "-b", help="one brand (default: every brand)")] = None,
    weeks: Annotated[int, typer.Option("--weeks", "-w", min=1, max=104, help="how many ISO weeks, this one included")] = 4,
    format: Annotated[str, typer.Option("--format", "-f", help="md or json")] = "md",
    slack: Annotated[bool, typer.Option("--slack", help="also post the digest to alerts.default_channel")] = False,
    config: ConfigOption = None,
) -> None:
    """Response figures per brand and ISO week, with the change against the week before."""
    import json

    from monitor.core.clock import SystemClock
    from alerts.slack import PostError, post_message
    from monitor.reports.digest import digest_message
    from monitor.reports.export import weekly_json, weekly_markdown
    from sqlalchemy import select

    from monitor.core.storage.schema import Incident
    from monitor.reports.figures import weekly_figures
    from monitor.core.storage.db import transaction

    if format not in ("md", "json"):
        typer.echo("--format must be md or json", err=True)
        raise typer.Exit(2)
    with open_store(config) as (loaded, sessions):
        if slack and not loaded.alerts.slack_enabled:
            typer.echo("--slack needs Slack configured: set alerts.slack_bot_token", err=True)
            raise typer.Exit(2)
        with transaction(sessions) as session:
            if brand is not None and brand not in {b.name for b in loaded.brands} and session.scalar(
                    select(Incident.id).where(Incident.brand == brand).limit(1)) is None:
                known = ", ".join(sorted(b.name for b in loaded.brands)) or "none"
                typer.echo(f"unknown brand {brand!r} (configured: {known})", err=True)
                raise typer.Exit(2)
            rows = weekly_figures(session, brand, weeks, SystemClock().now())
    typer.echo(weekly_markdown(rows) if format == "md" else json.dumps(weekly_json(rows), indent=2, ensure_ascii=False))
    if slack:
        try:
            ts = post_message(loaded.alerts, digest_message(rows, loaded.alerts.web_base_url))
        except PostError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
        typer.echo(f"posted the digest to {loaded.alerts.default_channel} (ts {ts})", err=True)
