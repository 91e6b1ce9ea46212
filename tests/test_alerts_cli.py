"""`flarewatch incident …` and `flarewatch silence …` run the same actions as the Slack buttons."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select
from typer.testing import CliRunner

from monitor.core.incidents import parse_until
from alerts.settings import AlertSettings
from monitor.cli import app
from monitor.core.storage.db import session_factory
from monitor.core.storage.schema import Incident, IncidentEvent, Silence
from monitor.core import accounts
from monitor.core.storage.db import transaction
from tests.alerts_support import clock, open_incident  # noqa: F401


def test_incident_and_silence_commands(tmp_path, sqlite_url, sqlite_engine, clock) -> None:
    sessions = session_factory(sqlite_engine)
    incident_id = open_incident(sessions, AlertSettings(), clock.now())
    with transaction(sessions) as session:
        accounts.create_user(session, "ops-ivan", "manager", None, clock.now())
    config = tmp_path / "flarewatch.toml"
    config.write_text(f'[daemon]\ndata_dir = "{tmp_path}"\n[database]\nurl = "{sqlite_url}"\n'
                      f'[[brands]]\nname = "acme"\nterms = ["acme"]\n', encoding="utf-8")
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, [*args, "--config", str(config)], env={"FLAREWATCH_USER": "ops-ivan"})

    first = run("incident", "ack", str(incident_id))
    assert first.exit_code == 0, first.output
    assert f"incident {incident_id} acknowledged by ops-ivan" in first.output
    assert "already acknowledged by ops-ivan" in run("incident", "ack", str(incident_id)).output
    assert run("incident", "snooze", str(incident_id), "--until", "30m").exit_code == 0
    silenced = run("silence", "ACME", "--until", "2h", "--reason", "planned maintenance")
    assert silenced.exit_code == 0 and "acme silenced until" in silenced.output  # the configured brand, any case
    assert run("incident", "resolve", str(incident_id)).exit_code == 0
    missing = run("incident", "resolve", "999")
    assert missing.exit_code == 1 and "incident 999 does not exist" in missing.output
    assert run("silence", "acme", "--until", "yesterday-ish").exit_code == 2

    with sessions() as session:
        incident = session.get(Incident, incident_id)
        assert incident.status == "resolved" and incident.acknowledged_by == "ops-ivan"
        events = session.execute(select(IncidentEvent.kind, IncidentEvent.actor, IncidentEvent.data)
                                 .where(IncidentEvent.incident_id == incident_id)
                                 .order_by(IncidentEvent.id)).all()
        assert [(k, a) for k, a, _ in events] == [("opened", None), ("acknowledged", "ops-ivan"),
                                                  ("snoozed", "ops-ivan"), ("silenced", "ops-ivan"),
                                                  ("resolved", "ops-ivan")]
        assert events[1].data == {"via": "cli"}
        [silence] = session.scalars(select(Silence)).all()
        assert silence.brand == "acme" and silence.reason == "planned maintenance" and silence.created_by == "ops-ivan"


def test_parse_until() -> None:
    now = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
    assert parse_until("90m", now) == now + timedelta(minutes=90)
    assert parse_until("1.5h", now) == now + timedelta(minutes=90)
    assert parse_until("2d", now) == now + timedelta(days=2)
    assert parse_until("2026-11-23T15:00", now) == datetime(2026, 11, 23, 15, tzinfo=timezone.utc)
    assert parse_until("2026-11-23T15:00+01:00", now) == datetime(2026, 11, 23, 14, tzinfo=timezone.utc)
