"""``flarewatch sources ...``: what each configured source has been doing."""
from __future__ import annotations

from datetime import datetime

import typer

from monitor.cli.common import ConfigOption

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "never"


@app.command("status")
def status_command(
    config: ConfigOption = None,
) -> None:
    """Table of sources: status, last success, last new post, last error, consecutive failures, posts fetched."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table
    from sqlalchemy.exc import SQLAlchemyError

    from connectors.registry import connector_mode
    from monitor.cli.common import open_store
    from monitor.core.clock import SystemClock
    from monitor.core.escape import strip_controls
    from monitor.core.sources import SourceState, sources_with_status

    try:
        with open_store(config) as (cfg, sessions), sessions() as session:
            sources = sources_with_status(session, cfg.sources(), SystemClock().now(), connector_mode)
    except SQLAlchemyError as exc:
        typer.echo(f"error: cannot read sources from the database: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(1) from None

    table = Table(title="Sources")
    for column in ("name", "brand", "kind", "status", "last success", "last new post", "last error", "failures",
                   "posts fetched"):
        table.add_column(column, overflow="fold")
    colour = {SourceState.OK: "green", SourceState.FAILING: "red", SourceState.NEEDS_CREDENTIALS: "red",
              SourceState.STALE: "yellow"}
    for source in sources:
        row = source.row
        name = source.name + ("" if source.configured else " (not in config)")
        status = f"[{colour.get(source.status, 'white')}]{source.status.replace('_', ' ')}[/]"
        if row is None:
            table.add_row(name, source.brand, f"{source.kind} ({source.mode})", status, "never polled", "", "", "0", "0")
            continue
        error = f"{_when(row.last_error_at)}: {escape(strip_controls(row.last_error))}" if row.last_error else ""
        if source.status == SourceState.NEEDS_CREDENTIALS:
            error = f"needs credentials (paused until a restart) - {error}"
        failures = str(row.consecutive_failures or 0)
        table.add_row(
            name, source.brand, f"{source.kind} ({source.mode})", status, _when(row.last_success_at),
            _when(row.last_post_at), error, f"[red]{failures}[/red]" if row.consecutive_failures else failures,
            str(row.posts_fetched or 0),
        )
    Console(width=200).print(table)
