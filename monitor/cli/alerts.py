"""`flarewatch incident ack|snooze|resolve|reopen|assign|note ID` and `flarewatch silence BRAND`.

They run the same actions as the web page, the API and the Slack buttons, through
`monitor.core.incidents.perform`: `--user` must name an active user with the manager or admin role, and a
brand is matched against the configured brands in any case. The alerts they queue (thread notes,
edited Slack messages) are delivered by the running daemon.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from monitor.cli.common import ConfigOption, open_store

if TYPE_CHECKING:
    from monitor.core.incidents import ActionKind, IncidentAction

UserOption = Annotated[str, typer.Option("--user", "-u", envvar="FLAREWATCH_USER",
                                         help="who is acting: an active manager or admin (env FLAREWATCH_USER)")]
UntilOption = Annotated[str, typer.Option(help="how long (30m, 2h, 1d) or until when (ISO time)")]

incident_app = typer.Typer(help="Acknowledge, snooze, resolve, re-open, assign or annotate an incident.",
                           no_args_is_help=True)


def _run(config_path: Path | None, user: str, build: Callable[[datetime], IncidentAction]) -> None:
    from alerts.routing import Alerts
    from monitor.core import incidents
    from monitor.core.escape import strip_controls
    from monitor.core.clock import SystemClock
    from monitor.core.storage.db import transaction

    try:
        with open_store(config_path) as (config, sessions), transaction(sessions) as session:
            now = SystemClock().now()
            result = incidents.perform(session, build(now), user, now, alerting=Alerts(config.alerts),
                                       brands=[b.name for b in config.brands], via="cli")
    except incidents.ActionInvalid as exc:
        typer.echo(f"error: {strip_controls(str(exc))}", err=True)
        raise typer.Exit(2) from None
    except incidents.ActionError as exc:
        typer.echo(f"error: {strip_controls(str(exc))}", err=True)
        raise typer.Exit(1) from None
    typer.echo(strip_controls(result.message))


def _action(kind: ActionKind, incident_id: int | None, *, until: str | None = None, owner: str | None = None,
            text: str | None = None, brand: str | None = None) -> Callable[[datetime], IncidentAction]:
    """The action, built once the command knows its `now` (an `until` like 2h counts from it)."""
    from monitor.core.incidents import IncidentAction, parse_until

    def build(now: datetime) -> IncidentAction:
        when = parse_until(until, now) if until is not None else None
        return IncidentAction(kind, incident_id, until=when, owner=owner, text=text, brand=brand)

    return build


@incident_app.command("ack")
def ack_command(incident_id: int, user: UserOption, config: ConfigOption = None) -> None:
    """Acknowledge an incident: you own it, escalation stops."""
    _run(config, user, _action("acknowledge", incident_id))


@incident_app.command("snooze")
def snooze_command(incident_id: int, user: UserOption, config: ConfigOption = None, until: UntilOption = "1h") -> None:
    """Mute an incident's alerts and pause its escalation for a while."""
    _run(config, user, _action("snooze", incident_id, until=until))


@incident_app.command("resolve")
def resolve_command(incident_id: int, user: UserOption, config: ConfigOption = None) -> None:
    """Resolve an incident: all alerting and escalation for it stops."""
    _run(config, user, _action("resolve", incident_id))


@incident_app.command("reopen")
def reopen_command(incident_id: int, user: UserOption, config: ConfigOption = None) -> None:
    """Re-open a resolved or closed incident."""
    _run(config, user, _action("reopen", incident_id))


@incident_app.command("assign")
def assign_command(incident_id: int, owner: Annotated[str, typer.Argument(help="an active user's name")],
                   user: UserOption, config: ConfigOption = None) -> None:
    """Assign an incident to a user."""
    _run(config, user, _action("assign", incident_id, owner=owner))


@incident_app.command("note")
def note_command(incident_id: int, text: Annotated[str, typer.Argument(help="the note")], user: UserOption,
                 config: ConfigOption = None) -> None:
    """Add a note to an incident's timeline (also posted in its Slack threads)."""
    _run(config, user, _action("note", incident_id, text=text))


def silence_command(
    brand: Annotated[str, typer.Argument(help="a configured brand (any case)")],
    until: Annotated[str, typer.Option(help="how long (30m, 2h, 1d) or until when (ISO time)")],
    user: UserOption,
    reason: Annotated[str, typer.Option(help="why (shown on the incident timeline)")] = "",
    config: ConfigOption = None,
) -> None:
    """Silence every alert about a brand until a time (planned maintenance, a known issue)."""
    _run(config, user, _action("silence", None, brand=brand, until=until, text=reason))


def mount(app: typer.Typer) -> None:
    app.add_typer(incident_app, name="incident")
    app.command("silence")(silence_command)
