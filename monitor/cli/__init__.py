"""The `flarewatch` command line: one Typer app that mounts each package's own commands.

Heavy imports (torch, transformers, uvicorn) happen inside the commands, so `--help` stays fast.
Exit codes: 0 success, 1 runtime failure, 2 bad usage or bad configuration.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from monitor.cli.alerts import mount as mount_alert_commands
from monitor.cli.sources import app as sources_app
from monitor.cli.model import app as model_app, score_command
from monitor.cli.backfill import backfill_command
from monitor.cli.health import health_command
from monitor.cli.common import EXIT_CANNOT_START, ConfigOption, load_or_exit
from monitor.demo import demo_command
from monitor.cli.detection import backtest_command, replay_command
from monitor.cli.reports import app as report_app
from monitor.cli.staff import mount as mount_staff_commands

app = typer.Typer(
    name="flarewatch",
    help="Social-media sentiment monitoring and crisis alerts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

config_app = typer.Typer(help="Check configuration files.", no_args_is_help=True)


@config_app.command("check")
def config_check(file: Annotated[Path, typer.Argument(help="The TOML file to check.")]) -> None:
    """Validate a configuration file and print what it configures."""
    from monitor.core.storage.db import redact_url

    config = load_or_exit(file)
    typer.echo(f"{file}: ok")
    typer.echo(f"  database: {redact_url(config.database_url)}")
    for brand in config.brands:
        kinds = ", ".join(f"{s.name} ({s.kind}, every {s.interval_seconds:g}s)" for s in brand.sources)
        typer.echo(f"  brand {brand.name}: terms {brand.terms}; sources: {kinds or 'none'}")
    typer.echo(f"  alerts: {'slack' if config.alerts.slack_bot_token else 'console'}")
    for warning in config.daemon.lease_warnings():
        typer.echo(f"  warning: {warning}")


@app.command("run")
def run_command(
    config: ConfigOption = None,
    role: Annotated[str | None, typer.Option(
        help="Comma-separated stages this replica runs, from poll,score,detect,deliver,web "
             "(default: daemon.roles, all of them). Replicas on one PostgreSQL database share the work.",
    )] = None,
) -> None:
    """Run the daemon: poll sources, score, detect, alert, and serve the web app."""
    from monitor.config import ROLES
    from monitor.daemon import run_daemon
    from monitor.logs import setup_logging
    from monitor.web.app import PortInUse

    loaded = load_or_exit(config)
    roles = None
    if role is not None:
        roles = [r.strip() for r in role.split(",") if r.strip()]
        unknown = [r for r in roles if r not in ROLES]
        if unknown or not roles:
            typer.echo(f"--role: expected some of {','.join(ROLES)}, got {role!r}", err=True)
            raise typer.Exit(2)
    setup_logging(loaded.daemon.log_level)
    try:
        run_daemon(loaded, roles)
    except PortInUse as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_CANNOT_START) from None


app.add_typer(config_app, name="config")
app.command("demo")(demo_command)
app.command("backfill")(backfill_command)
app.add_typer(model_app, name="model", help="Train, evaluate and inspect the sentiment model.")
app.command("score")(score_command)
app.command("replay")(replay_command)
app.command("backtest")(backtest_command)
app.command("health")(health_command)
app.add_typer(sources_app, name="sources", help="Inspect the configured sources and their health.")
app.add_typer(report_app, name="report", help="Incident reports (html, md, csv) and weekly response figures.")
mount_staff_commands(app)  # users, queue, claim, release, answer, dismiss, web
mount_alert_commands(app)  # incident ack|snooze|resolve, silence


def main() -> None:
    app()


if __name__ == "__main__":
    main()
