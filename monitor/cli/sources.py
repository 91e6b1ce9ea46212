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
    """Table of sources: last success, last error, consecutive failures, posts fetched."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from monitor.core.escape import strip_controls
    from monitor.cli.common import open_store
    from monitor.core.storage.schema import Source

    try:
        with open_store(config) as (cfg, sessions), sessions() as session:
            rows = {row.name: row for row in session.scalars(select(Source))}
    except SQLAlchemyError as exc:
        typer.echo(f"error: cannot read sources from the database: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(1) from None

    from monitor.core.clock import SystemClock
    from monitor.web.views import SourceExpectation, source_status

    now = SystemClock().now()
    table = Table(title="Sources")
    for column in ("name", "brand", "kind", "status", "last success", "last new post", "last error", "failures",
                   "posts fetched"):
        table.add_column(column, overflow="fold")
    configured = {s.name for _, s in cfg.sources()}
    colour = {"ok": "green", "failing": "red", "needs_credentials": "red", "stale": "yellow"}
    for brand, source in cfg.sources():
        row = rows.get(source.name)
        if row is None:
            table.add_row(source.name, brand.name, f"{source.kind} ({source.mode})", "never", "never polled", "", "",
                          "0", "0")
            continue
        status = source_status(row, SourceExpectation.of(source) if source.enabled else None, now)
        error = f"{_when(row.last_error_at)}: {escape(strip_controls(row.last_error))}" if row.last_error else ""
        if status == "needs_credentials":
            error = f"needs credentials (paused until a restart) - {error}"
        failures = str(row.consecutive_failures or 0)
        table.add_row(
            source.name + ("" if source.enabled else " (disabled)"), brand.name, f"{source.kind} ({source.mode})",
            f"[{colour.get(status, 'white')}]{status.replace('_', ' ')}[/]", _when(row.last_success_at), _when(row.last_post_at), error,
            f"[red]{failures}[/red]" if row.consecutive_failures else failures, str(row.posts_fetched or 0),
        )
    for name, row in sorted(rows.items()):
        if name not in configured:
            table.add_row(f"{name} (not in config)", row.brand, row.kind, "unconfigured", _when(row.last_success_at),
                          _when(row.last_post_at), escape(strip_controls(row.last_error or "")),
                          str(row.consecutive_failures or 0), str(row.posts_fetched or 0))
    Console(width=200).print(table)
