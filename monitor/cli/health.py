"""`flarewatch health`: what /healthz says (sources, alert delivery, database), from a terminal.

It reads the database the daemon writes, so it works with the daemon running elsewhere; only the
daemon's in-process job state (and its Slack token check, redone here with `--slack`) is missing.
Exit status 0 when healthy, 1 when degraded, 2 when the database cannot be reached.
"""
from __future__ import annotations

import json
from typing import Annotated

import typer

from monitor.cli.common import ConfigOption


def health_command(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the /healthz JSON")] = False,
    slack: Annotated[bool, typer.Option("--slack/--no-slack", help="also try the Slack token (auth.test)")] = True,
) -> None:
    """Health of sources and alert delivery, with the reasons when something is wrong."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from monitor.core.escape import strip_controls
    from monitor.cli.common import open_store
    from monitor.core.clock import SystemClock
    from monitor.web.health import health_report

    with open_store(config) as (cfg, sessions):
        clock = SystemClock()
        daemon = None
        if slack and cfg.alerts.slack_enabled:
            from alerts.slack import check_auth

            daemon = {"jobs": {}, "alerts": {"slack_auth": check_auth(cfg.alerts, clock.now()).as_dict()}}
        body, _ = health_report(cfg, sessions, clock, (lambda: daemon) if daemon is not None else None)
    if as_json:
        typer.echo(json.dumps(body, indent=2, ensure_ascii=False))
    else:
        console = Console(width=200, highlight=False)
        style = {"ok": "green", "degraded": "yellow", "down": "red"}[body["status"]]
        console.print(Text(f"flarewatch is {body['status']}", style=f"bold {style}"))
        if body["reasons"]:
            table = Table()
            for column in ("check", "problem", "detail"):
                table.add_column(column, overflow="fold")
            for reason in body["reasons"]:  # messages carry error text from services: no terminal escapes
                table.add_row(reason["check"], reason["code"], Text(strip_controls(reason["message"])))
            console.print(table)
    raise typer.Exit(0 if body["ok"] else 2 if body["status"] == "down" else 1)
