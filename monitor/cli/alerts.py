"""`flarewatch incident ack|snooze|resolve ID` and `flarewatch silence BRAND`: the Slack buttons, from a terminal.

They run the same actions (alerts.actions) and queue the same Slack thread notes and message edits,
which the running daemon delivers.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from monitor.cli.common import ConfigOption, open_store

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

UserOption = Annotated[str, typer.Option("--user", "-u", envvar="FLAREWATCH_USER", help="who is acting (env FLAREWATCH_USER)")]
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhd])\s*$")

incident_app = typer.Typer(help="Acknowledge, snooze or resolve an incident.", no_args_is_help=True)


def parse_until(value: str, now: datetime) -> datetime:
    """`2h`, `30m`, `1d` from now, or an ISO time (UTC unless it says otherwise)."""
    match = _DURATION.match(value)
    if match:
        amount, unit = float(match.group(1)), match.group(2)
        return now + timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[unit]: amount})
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{value!r} is neither a duration (30m, 2h, 1d) nor an ISO time") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


@contextmanager
def _session(config_path: Path | None) -> Iterator[tuple[Any, Session, datetime]]:
    from monitor.core.clock import SystemClock
    from monitor.core.storage.db import transaction

    with open_store(config_path) as (config, sessions), transaction(sessions) as session:
        yield config, session, SystemClock().now()


def _run(config_path: Path | None, action: Any) -> None:
    from alerts.actions import ActionError

    try:
        with _session(config_path) as (config, session, now):
            result = action(session, config.alerts, now)
    except ActionError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(result.message if hasattr(result, "message") else result)


@incident_app.command("ack")
def ack_command(incident_id: int, user: UserOption, config: ConfigOption = None) -> None:
    """Acknowledge an incident: you own it, escalation stops."""
    from alerts.actions import acknowledge

    _run(config, lambda s, a, now: acknowledge(s, incident_id, user, now, settings=a, via="cli"))


@incident_app.command("snooze")
def snooze_command(
    incident_id: int, user: UserOption, config: ConfigOption = None,
    until: Annotated[str, typer.Option(help="how long (30m, 2h) or until when (ISO time)")] = "1h",
) -> None:
    """Mute an incident's alerts and pause its escalation for a while."""
    from alerts.actions import snooze

    _run(config, lambda s, a, now: snooze(s, incident_id, user, parse_until(until, now), now, settings=a, via="cli"))


@incident_app.command("resolve")
def resolve_command(incident_id: int, user: UserOption, config: ConfigOption = None) -> None:
    """Resolve an incident: all alerting and escalation for it stops."""
    from alerts.actions import resolve

    _run(config, lambda s, a, now: resolve(s, incident_id, user, now, settings=a, via="cli"))


def silence_command(
    brand: Annotated[str, typer.Argument(help="the brand to silence")],
    until: Annotated[str, typer.Option(help="how long (30m, 2h, 1d) or until when (ISO time)")],
    user: UserOption,
    reason: Annotated[str, typer.Option(help="why (shown on the incident timeline)")] = "",
    config: ConfigOption = None,
) -> None:
    """Silence every alert about a brand until a time (planned maintenance, a known issue)."""
    from alerts.actions import silence

    def act(session: Session, alerts: Any, now: datetime) -> str:
        row = silence(session, brand, parse_until(until, now), user, reason, now, settings=alerts)
        return f"{brand} silenced until {row.until:%Y-%m-%d %H:%M} UTC"

    _run(config, act)


def mount(app: typer.Typer) -> None:
    app.add_typer(incident_app, name="incident")
    app.command("silence")(silence_command)
