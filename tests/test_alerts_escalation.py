"""Escalation on a simulated clock: climbing levels, acknowledgement, snoozes, silences, resolution."""
from __future__ import annotations

import io
from datetime import timedelta

from sqlalchemy import select

from alerts.console import ConsoleSender
from alerts.delivery import deliver_pending
from alerts.senders import Senders
from alerts.escalation import describe, escalate_due
from alerts.routing import Alerts
from alerts.settings import AlertSettings, EscalationLevel
from monitor.core import incidents
from monitor.core.storage.db import transaction
from monitor.core.storage.schema import Incident, IncidentEvent
from tests.alerts_support import (  # noqa: F401 - fixtures
    HOSTILE, T0, add_event, clock, drain, open_incident, outbox, slack, slack_senders, slack_settings,
)

POLICY = [{
    "brands": ["acme"], "min_severity": 1,
    "levels": [
        {"channels": ["C0ALERTS01"], "ack_timeout_minutes": 10},
        {"channels": ["C0MGMT0001"], "mention": ["S0ONCALL1"], "ack_timeout_minutes": 15},
        {"dm": ["U0ALICE01"]},
    ],
}]


def _settings(slack):
    slack.channels["C0MGMT0001"] = "management"
    return slack_settings(slack, escalation=POLICY)


def _incident(sessions, incident_id) -> Incident:
    with sessions() as session:
        return session.get(Incident, incident_id)


def _kinds(sessions, incident_id) -> list[str]:
    with sessions() as session:
        return list(session.scalars(
            select(IncidentEvent.kind).where(IncidentEvent.incident_id == incident_id).order_by(IncidentEvent.id)))


def test_unacknowledged_incident_climbs_each_level_on_time(sessions, slack, clock) -> None:
    settings = _settings(slack)
    senders = slack_senders(settings)
    incident_id = open_incident(sessions, settings, clock.now())
    assert _incident(sessions, incident_id).next_escalation_at == T0 + timedelta(minutes=10)
    drain(sessions, senders, clock)
    assert [m["ts"] for m in slack.parents("C0ALERTS01")] and not slack.parents("C0MGMT0001")

    clock.set(T0 + timedelta(minutes=9, seconds=59))
    assert escalate_due(sessions, settings, clock) == 0
    clock.set(T0 + timedelta(minutes=10))
    assert escalate_due(sessions, settings, clock) == 1
    assert escalate_due(sessions, settings, clock) == 0  # once per timeout, not once per run
    drain(sessions, senders, clock)
    incident = _incident(sessions, incident_id)
    assert incident.escalation_level == 1 and incident.next_escalation_at == T0 + timedelta(minutes=25)
    [first] = slack.parents("C0ALERTS01")
    [second] = slack.parents("C0MGMT0001")  # the new level's channel gets the incident
    for parent in (first, second):
        [note] = slack.replies(parent["ts"])
        assert note["text"].startswith("Escalated to level 2: not acknowledged after 10 minutes")
        assert slack.mentions(note) == ["!subteam^S0ONCALL1"] and note["reply_broadcast"] is True

    clock.set(T0 + timedelta(minutes=25))
    assert escalate_due(sessions, settings, clock) == 1
    drain(sessions, senders, clock)
    [dm] = slack.parents("D0ALICE01")  # a direct message to the named person
    assert [c.args["users"] for c in slack.calls_to("conversations.open")] == ["U0ALICE01"]
    assert _incident(sessions, incident_id).next_escalation_at is None  # top level: nothing further
    clock.set(T0 + timedelta(hours=3))
    assert escalate_due(sessions, settings, clock) == 0
    assert _kinds(sessions, incident_id) == ["opened", "escalated", "escalated"]
    with sessions() as session:
        data = session.scalars(select(IncidentEvent.data).where(IncidentEvent.kind == "escalated")).all()
    assert data[0]["targets"] == ["slack:C0MGMT0001", "mention:S0ONCALL1"] and data[1]["targets"] == ["dm:U0ALICE01"]
    assert len(slack.parents()) == 3 and len(slack.calls_to("chat.postMessage")) == 3 + 2 + 3


def test_acknowledgement_stops_the_climb(sessions, slack, clock) -> None:
    settings = _settings(slack)
    senders = slack_senders(settings)
    incident_id = open_incident(sessions, settings, clock.now())
    drain(sessions, senders, clock)
    clock.set(T0 + timedelta(minutes=5))
    with transaction(sessions) as session:
        result = incidents.acknowledge(session, incident_id, "slack:U0BOB0001", clock.now(), alerting=Alerts(settings), via="slack")
    assert result.changed
    with transaction(sessions) as session:
        again = incidents.acknowledge(session, incident_id, "carol", clock.now(), alerting=Alerts(settings))
    assert not again.changed and "already acknowledged by slack:U0BOB0001" in again.message
    clock.set(T0 + timedelta(hours=2))
    assert escalate_due(sessions, settings, clock) == 0
    drain(sessions, senders, clock)

    [parent] = slack.parents()
    assert not slack.parents("C0MGMT0001")
    [note] = slack.replies(parent["ts"])
    assert note["text"] == "Acknowledged by <@U0BOB0001>."
    status = next(f["text"] for b in parent["blocks"] if b.get("fields") for f in b["fields"] if "Status" in f["text"])
    assert "acknowledged by <@U0BOB0001>" in status
    buttons = [e["action_id"] for b in parent["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert "incident_ack" not in buttons and "incident_resolve" in buttons
    assert _kinds(sessions, incident_id) == ["opened", "acknowledged"]


def test_snooze_mutes_and_pauses_then_escalation_resumes(sessions, slack, clock) -> None:
    settings = _settings(slack)
    senders = slack_senders(settings)
    incident_id = open_incident(sessions, settings, clock.now())
    drain(sessions, senders, clock)
    clock.set(T0 + timedelta(minutes=5))
    with transaction(sessions) as session:
        incidents.snooze(session, incident_id, "dave", clock.now() + timedelta(minutes=60), clock.now(),
                         alerting=Alerts(settings))
    clock.set(T0 + timedelta(minutes=20))
    assert escalate_due(sessions, settings, clock) == 0
    add_event(sessions, settings, incident_id, "severity_changed", clock.now(), data={"from": 2, "to": 3}, severity=3)
    drain(sessions, senders, clock)
    [parent] = slack.parents()
    notes = [r["text"] for r in slack.replies(parent["ts"])]
    assert notes == ["Snoozed by dave until 2026-11-23T10:05+00:00."]  # the update was muted...
    assert "SEV-3" in parent["blocks"][0]["text"]["text"]  # ...but the parent shows the current state
    assert "alerts_suppressed" in _kinds(sessions, incident_id)

    clock.set(T0 + timedelta(minutes=65))
    assert escalate_due(sessions, settings, clock) == 1  # snooze over, still unacknowledged: re-alert level 1
    assert _incident(sessions, incident_id).next_escalation_at == T0 + timedelta(minutes=75)
    clock.set(T0 + timedelta(minutes=75))
    assert escalate_due(sessions, settings, clock) == 1
    drain(sessions, senders, clock)
    assert _incident(sessions, incident_id).escalation_level == 1
    assert [r["text"].split(".")[0] for r in slack.replies(parent["ts"])][1:] == [
        "Snooze ended, still not acknowledged", "Escalated to level 2: not acknowledged after 10 minutes"]


def test_silence_holds_alerts_until_it_ends(sessions, slack, clock) -> None:
    settings = _settings(slack)
    senders = slack_senders(settings)
    with transaction(sessions) as session:
        incidents.silence(session, "acme", T0 + timedelta(minutes=30), "erin", "planned outage", clock.now(),
                          alerting=Alerts(AlertSettings()))
    incident_id = open_incident(sessions, settings, clock.now())
    assert outbox(sessions) == [] and _kinds(sessions, incident_id) == ["opened", "alerts_suppressed"]
    assert _incident(sessions, incident_id).next_escalation_at == T0 + timedelta(minutes=30)
    clock.set(T0 + timedelta(minutes=29))
    assert escalate_due(sessions, settings, clock) == 0 and drain(sessions, senders, clock) == 0

    clock.set(T0 + timedelta(minutes=30))
    assert escalate_due(sessions, settings, clock) == 1
    drain(sessions, senders, clock)
    assert len(slack.parents("C0ALERTS01")) == 1 and not slack.parents("C0MGMT0001")
    incident = _incident(sessions, incident_id)
    assert incident.escalation_level == 0 and incident.next_escalation_at == T0 + timedelta(minutes=40)


def test_silence_on_an_open_incident_is_noted_and_stops_the_climb(sessions, slack, clock) -> None:
    settings = _settings(slack)
    senders = slack_senders(settings)
    incident_id = open_incident(sessions, settings, clock.now())
    with transaction(sessions) as session:
        incidents.silence(session, "acme", T0 + timedelta(hours=1), "erin", "known issue", clock.now(), alerting=Alerts(settings))
    clock.set(T0 + timedelta(minutes=30))
    assert escalate_due(sessions, settings, clock) == 0
    drain(sessions, senders, clock)
    [parent] = slack.parents()
    assert [r["text"] for r in slack.replies(parent["ts"])] == [
        "erin silenced alerts for this brand until 2026-11-23T10:00+00:00."]
    assert _incident(sessions, incident_id).next_escalation_at == T0 + timedelta(hours=1)


def test_resolve_stops_everything(sessions, slack, clock) -> None:
    settings = _settings(slack)
    senders = slack_senders(settings)
    incident_id = open_incident(sessions, settings, clock.now())
    clock.set(T0 + timedelta(minutes=3))
    with transaction(sessions) as session:
        assert incidents.resolve(session, incident_id, "frank", clock.now(), alerting=Alerts(settings)).changed
        assert not incidents.resolve(session, incident_id, "frank", clock.now(), alerting=Alerts(settings)).changed
        assert not incidents.acknowledge(session, incident_id, "frank", clock.now(), alerting=Alerts(settings)).changed
    clock.set(T0 + timedelta(hours=1))
    assert escalate_due(sessions, settings, clock) == 0
    drain(sessions, senders, clock)
    [parent] = slack.parents()
    assert [r["text"] for r in slack.replies(parent["ts"])] == ["Resolved by frank."]
    assert "[resolved]" in parent["blocks"][0]["text"]["text"]
    assert not [b for b in parent["blocks"] if b["type"] == "actions"]
    incident = _incident(sessions, incident_id)
    assert incident.status == "resolved" and incident.next_escalation_at is None


def test_without_a_slack_token_alerts_go_to_the_console(sessions, clock) -> None:
    settings = AlertSettings()
    assert not settings.slack_enabled
    incident_id = open_incident(sessions, settings, clock.now(),
                                posts=[("\x1b[31m[bold]red[/bold] " + HOSTILE, "mallory", 10)])
    out = io.StringIO()
    senders = Senders({"console": ConsoleSender(file=out)}, settings)
    assert deliver_pending(sessions, senders, clock, 50) == 1
    printed = out.getvalue()
    assert "SEV-2 acme: negative spike" in printed and "42 negative posts in 15 min" in printed
    # The post's terminal escape is stripped and its rich markup printed as text, not interpreted.
    assert "\x1b[31m" not in printed and "[31m[bold]red[/bold]" in printed
    assert [(r.channel, r.status) for r in outbox(sessions)] == [("console", "sent")]
    assert _incident(sessions, incident_id).next_escalation_at is None  # one level only: nothing to climb to


def test_an_escalated_event_names_every_kind_of_target() -> None:
    level = EscalationLevel(channels=["C0MGMT0001"], mention=["S0ONCALL1"], dm=["U0ALICE01"], webhooks=["ops"],
                            email=["oncall@acme.example"], wecom=["support"], dingtalk=["duty"])
    assert describe(level) == ["slack:C0MGMT0001", "mention:S0ONCALL1", "dm:U0ALICE01", "webhook:ops",
                               "email:oncall@acme.example", "wecom:support", "dingtalk:duty"]
