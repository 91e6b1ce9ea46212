"""The incident lifecycle in core, seen through its one channel seam (`monitor.core.incidents.Alerting`).

No alert channel is imported: a recording `Alerting` shows what core asks of the channels, so a
change that skips the seam (or calls it twice) fails here whatever the channels do with it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from monitor.core import incidents
from monitor.core.enums import EventKind, IncidentStatus
from monitor.core.incidents import IncidentAction, perform
from monitor.core.storage.db import transaction
from monitor.core.storage.schema import Incident, IncidentEvent
from tests.queue_seed import T0, add_incident, add_staff


@dataclass
class Recording:
    told: list[str] = field(default_factory=list)
    restarted: list[int] = field(default_factory=list)

    def notify(self, session: Session, incident: Incident, event: IncidentEvent, now: datetime) -> None:
        self.told.append(event.kind)

    def restart_escalation(self, incident: Incident, now: datetime) -> None:
        self.restarted.append(incident.id)


def _act(sessions: sessionmaker[Session], alerting: Recording, action: IncidentAction) -> incidents.ActionResult:
    with transaction(sessions) as session:
        return perform(session, action, "mona", T0, alerting=alerting, brands=["acme"], via="test")


def test_every_change_is_told_once_and_a_repeat_not_at_all(sessions) -> None:
    with transaction(sessions) as session:
        add_staff(session)
        incident_id = add_incident(session).id
    alerting = Recording()
    for kind in ("acknowledge", "acknowledge", "resolve", "resolve"):
        _act(sessions, alerting, IncidentAction(kind, incident_id))
    _act(sessions, alerting, IncidentAction("note", incident_id, text="called the vendor"))
    assert alerting.told == [EventKind.ACKNOWLEDGED, EventKind.RESOLVED, EventKind.NOTE]


def test_reopening_restarts_escalation_only_when_nobody_acknowledged(sessions) -> None:
    with transaction(sessions) as session:
        add_staff(session)
        quiet, owned = add_incident(session).id, add_incident(session).id
    alerting = Recording()
    _act(sessions, alerting, IncidentAction("acknowledge", owned))
    for incident_id in (quiet, owned):
        _act(sessions, alerting, IncidentAction("resolve", incident_id))
        assert _act(sessions, alerting, IncidentAction("reopen", incident_id)).changed
    assert alerting.restarted == [quiet]
    with sessions() as session:
        assert session.get(Incident, quiet).status == IncidentStatus.OPEN


def test_a_silence_is_told_to_each_open_incident_of_the_brand(sessions) -> None:
    with transaction(sessions) as session:
        add_staff(session)
        add_incident(session), add_incident(session), add_incident(session, brand="globex")
    alerting = Recording()
    result = _act(sessions, alerting, IncidentAction("silence", None, until=T0 + timedelta(hours=1), brand="ACME"))
    assert result.message.startswith("acme silenced until")
    assert alerting.told == [EventKind.SILENCED, EventKind.SILENCED]
    with sessions() as session:
        assert incidents.active_silence_until(session, "acme", T0) == T0 + timedelta(hours=1)
        assert incidents.active_silence_until(session, "globex", T0) is None


def test_an_action_named_by_a_surface_is_one_of_the_kinds_or_refused() -> None:
    assert [incidents.action_kind(k) for k in incidents.ACTION_KINDS] == list(incidents.REQUIRED_ROLE)
    with pytest.raises(incidents.ActionInvalid, match="unknown action 'delete'"):
        incidents.action_kind("delete")
