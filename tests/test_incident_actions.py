"""Incident actions on every surface (page, REST API, Slack, CLI) with every role: one code path, one rule set.

Managers and admins change incidents; agents see and are refused, with the same answer everywhere.
"""
from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from alerts.interactivity import dispatch
from monitor.cli import app as cli_app
from monitor.core.clock import SimulatedClock
from monitor.core.storage.db import session_factory, transaction
from monitor.core.storage.schema import Incident, IncidentEvent, Silence, User
from monitor.web.app import create_app
from tests.queue_seed import T0, add_incident, add_staff, web_config

ROLES = {"agent": "alice", "manager": "mona", "admin": "ada"}
SLACK_IDS = {"alice": "U0ALICE01", "mona": "U0MONA001", "ada": "U0ADA0001"}
ACTIONS = ("acknowledge", "snooze", "resolve", "reopen", "silence", "assign", "note")
SLACK_BUTTONS = {"acknowledge": "incident_ack", "snooze": "incident_snooze_1h", "resolve": "incident_resolve"}


class Env:
    def __init__(self, engine, tmp_path) -> None:
        self.sessions = session_factory(engine)
        self.clock = SimulatedClock(T0)
        self.config = web_config()
        with transaction(self.sessions) as session:
            self.tokens = add_staff(session)
            for name, slack_id in SLACK_IDS.items():
                session.scalar(select(User).where(User.name == name)).slack_user_id = slack_id
        self.client = TestClient(create_app(self.config, self.sessions, self.clock), raise_server_exceptions=False)
        self.logged_in: str | None = None
        self.config_file = tmp_path / "flarewatch.toml"
        self.config_file.write_text(
            f'[daemon]\ndata_dir = "{tmp_path}"\n[database]\nurl = "{engine.url.render_as_string(hide_password=False)}"\n'
            '[[brands]]\nname = "acme"\nterms = ["acme"]\n', encoding="utf-8")

    def incident(self, status: str = "open") -> int:
        with transaction(self.sessions) as session:
            incident = add_incident(session)
            incident.status = status
            if status != "open":
                incident.closed_at = T0
            return incident.id

    def login(self, user: str) -> str:
        if self.logged_in != user:
            page = self.client.get("/login").text
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
            self.client.post("/login", data={"username": user, "password": f"{user}-password", "csrf_token": csrf,
                                             "next": "/queue"}, follow_redirects=False)
            self.logged_in = user
        return re.search(r'name="csrf_token" value="([^"]+)"', self.client.get("/queue").text).group(1)

    # --- the four surfaces: each returns (changed, message) -------------------------------------

    def page(self, user: str, action: str, incident_id: int) -> tuple[bool, str]:
        csrf = self.login(user)
        form = {"csrf_token": csrf, "action": action, "until": "2h", "owner": "bob", "text": "called the CEO",
                "reason": "planned"}
        response = self.client.post(f"/incidents/{incident_id}/actions", data=form,
                                    headers={"Accept": "application/json"})
        return response.status_code == 200 and response.json()["changed"], response.json()["message"]

    def api(self, user: str, action: str, incident_id: int) -> tuple[bool, str]:
        path, body = {
            "acknowledge": ("acknowledge", None), "snooze": ("snooze", {"until": "2h"}), "resolve": ("resolve", None),
            "reopen": ("reopen", None), "silence": ("silence", {"until": "2h", "reason": "planned"}),
            "assign": ("assign", {"owner": "bob"}), "note": ("notes", {"text": "called the CEO"}),
        }[action]
        response = self.client.post(f"/api/incidents/{incident_id}/{path}", json=body,
                                    headers={"Authorization": f"Bearer {self.tokens[user]}"})
        if response.status_code != 200:
            return False, response.json()["error"]["message"]
        return response.json()["changed"], response.json()["message"]

    def cli(self, user: str, action: str, incident_id: int) -> tuple[bool, str]:
        args = {
            "acknowledge": ["incident", "ack", str(incident_id)], "snooze": ["incident", "snooze", str(incident_id),
                                                                            "--until", "2h"],
            "resolve": ["incident", "resolve", str(incident_id)], "reopen": ["incident", "reopen", str(incident_id)],
            "silence": ["silence", "ACME", "--until", "2h", "--reason", "planned"],
            "assign": ["incident", "assign", str(incident_id), "bob"],
            "note": ["incident", "note", str(incident_id), "called the CEO"],
        }[action]
        result = CliRunner().invoke(cli_app, [*args, "--user", user, "--config", str(self.config_file)])
        return result.exit_code == 0, result.output

    def slack(self, user: str, action: str, incident_id: int) -> tuple[bool, str]:
        click = {"type": "block_actions", "user": {"id": SLACK_IDS[user]},
                 "actions": [{"action_id": SLACK_BUTTONS[action], "value": str(incident_id)}]}
        [result] = dispatch(self.sessions, self.config.alerts, self.clock, click)
        return result.changed, result.message

    def took_effect(self, action: str, incident_id: int, user: str) -> bool:
        with self.sessions() as session:
            incident = session.get(Incident, incident_id)
            kinds = {e.kind: e for e in session.scalars(select(IncidentEvent).where(
                IncidentEvent.incident_id == incident_id, IncidentEvent.actor == user))}
            return {
                "acknowledge": incident.acknowledged_by == user,
                # the CLI runs on the system clock, the app on the test's
                "snooze": incident.snoozed_until is not None and incident.snoozed_until >= T0 + timedelta(hours=1),
                "resolve": incident.status == "resolved",
                "reopen": incident.status == "open" and incident.closed_at is None,
                "silence": session.scalar(select(Silence).where(Silence.created_by == user,
                                                                Silence.brand == "acme")) is not None,
                "assign": incident.owner == "bob",
                "note": "note" in kinds and kinds["note"].data["text"] == "called the CEO",
            }[action]


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> Any:
    from sqlalchemy import create_engine

    from monitor.core.storage.db import make_engine, migrate

    path = tmp_path_factory.mktemp("actions")
    engine = make_engine(f"sqlite:///{path / 'actions.db'}")
    migrate(engine)
    yield Env(engine, path)
    engine.dispose()
    del create_engine


CASES = [(surface, role, action) for surface in ("page", "api", "cli", "slack") for role in ROLES
         for action in ACTIONS if surface != "slack" or action in SLACK_BUTTONS]


@pytest.mark.parametrize("surface,role,action", CASES)
def test_action_surface_role_matrix(env, surface: str, role: str, action: str) -> None:
    user = ROLES[role]
    with transaction(env.sessions) as session:  # each case starts without a silence in the way
        for row in session.scalars(select(Silence)):
            session.delete(row)
    incident_id = env.incident("resolved" if action == "reopen" else "open")
    changed, message = getattr(env, surface)(user, action, incident_id)
    if role == "agent":
        assert not changed and "needs the manager role; alice is agent" in message, message
        assert not env.took_effect(action, incident_id, user)
    else:
        assert changed, message
        assert env.took_effect(action, incident_id, user), (surface, action, message)
        with env.sessions() as session:
            via = [e.data.get("via") for e in session.scalars(select(IncidentEvent).where(
                IncidentEvent.incident_id == incident_id, IncidentEvent.actor == user))]
        if action != "silence":
            assert {"page": "web", "api": "api", "cli": "cli", "slack": "slack"}[surface] in via


def test_cli_and_api_refuse_unknown_users_and_brands(env) -> None:
    incident_id = env.incident()
    for user in ("nobody", "ghost3"):
        ok, output = env.cli(user, "acknowledge", incident_id)
        assert not ok and f"'{user}' is not a flarewatch user" in output
    result = CliRunner().invoke(cli_app, ["silence", "Acmee", "--until", "2h", "--user", "mona",
                                          "--config", str(env.config_file)])
    assert result.exit_code == 2 and "no brand 'Acmee' is configured" in result.output
    headers = {"Authorization": f"Bearer {env.tokens['mona']}"}
    bad = env.client.post("/api/silences", json={"brand": "Acmee", "until": "2h"}, headers=headers)
    assert bad.status_code == 422 and "no brand 'Acmee'" in bad.json()["error"]["message"]
    good = env.client.post("/api/silences", json={"brand": "ACME", "until": "2h"}, headers=headers)
    assert good.status_code == 200 and good.json()["message"].startswith("acme silenced until")
    past = env.client.post(f"/api/incidents/{incident_id}/snooze", json={"until": "2020-01-01T00:00"}, headers=headers)
    assert past.status_code == 422 and "future" in past.json()["error"]["message"]
    nobody = env.client.post(f"/api/incidents/{incident_id}/assign", json={"owner": "ghost3"}, headers=headers)
    assert nobody.status_code == 422
    assert env.client.post("/api/incidents/999999/acknowledge", headers=headers).status_code == 404
    with transaction(env.sessions) as session:
        session.scalar(select(User).where(User.name == "ada")).active = False
    try:
        ok, output = env.cli("ada", "acknowledge", incident_id)
        assert not ok and "deactivated" in output
    finally:
        with transaction(env.sessions) as session:
            session.scalar(select(User).where(User.name == "ada")).active = True


def test_the_page_shows_the_state_and_needs_csrf(env) -> None:
    incident_id = env.incident()
    csrf = env.login("mona")
    forged = env.client.post(f"/incidents/{incident_id}/actions", data={"action": "acknowledge"},
                             follow_redirects=False)
    assert forged.status_code == 403
    done = env.client.post(f"/incidents/{incident_id}/actions", data={"csrf_token": csrf, "action": "snooze",
                                                                      "until": "4h"}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"/incidents/{incident_id}"
    page = env.client.get(f"/incidents/{incident_id}").text
    hm = lambda delta: (T0 + delta).strftime("%Y-%m-%d %H:%M UTC")  # noqa: E731
    assert f"snoozed until {(T0 + timedelta(hours=4)):%Y-%m-%d %H:%M} UTC" in page  # the flash message
    assert f'<dd id="incident-snooze">until {hm(timedelta(hours=4))}</dd>' in page  # the state panel
    env.client.post(f"/incidents/{incident_id}/actions", data={"csrf_token": csrf, "action": "acknowledge"})
    env.client.post(f"/incidents/{incident_id}/actions", data={"csrf_token": csrf, "action": "silence",
                                                               "until": "1d", "reason": "launch"})
    env.client.post(f"/incidents/{incident_id}/actions", data={"csrf_token": csrf, "action": "note",
                                                               "text": "<b>launch</b> & <script>x()</script>"})
    state = env.client.get(f"/incidents/{incident_id}/state").text
    assert f"{hm(timedelta(0))} by mona" in state and f'<dd id="incident-silence">until {hm(timedelta(days=1))}' in state
    assert 'value="reopen"' not in state and 'value="resolve"' in state
    api = env.client.get(f"/api/incidents/{incident_id}", headers={"Authorization": f"Bearer {env.tokens['mona']}"})
    body = api.json()
    assert body["acknowledged_by"] == "mona" and body["snoozed_until"].startswith((T0 + timedelta(hours=4)).isoformat()[:19])
    assert body["silenced_until"].startswith((T0 + timedelta(days=1)).isoformat()[:19])
    timeline = env.client.get(f"/incidents/{incident_id}").text
    assert "Note from mona: &lt;b&gt;launch&lt;/b&gt; &amp; &lt;script&gt;" in timeline and "<b>launch</b>" not in timeline
    env.login("alice")
    assert env.client.get(f"/incidents/{incident_id}/state").status_code == 403  # agents: the page is managers'


def test_openapi_documents_the_actions(env) -> None:
    paths = env.client.get("/api/openapi.json").json()["paths"]
    for path in ("acknowledge", "snooze", "resolve", "reopen", "assign", "notes", "silence"):
        assert "post" in paths[f"/api/incidents/{{incident_id}}/{path}"]
    assert "post" in paths["/api/silences"]


def test_a_refusal_has_the_same_status_on_the_page_as_in_the_api(env) -> None:
    """No such incident is 404 (an id past bigint too), the role 403, a bad request 422: on both surfaces."""
    incident_id = env.incident()
    csrf = env.login("mona")
    headers = {"Accept": "application/json"}
    api = {"Authorization": f"Bearer {env.tokens['mona']}"}
    for missing in (999999, 2**63):
        page = env.client.post(f"/incidents/{missing}/actions", data={"csrf_token": csrf, "action": "acknowledge"},
                               headers=headers)
        assert page.status_code == 404 and f"incident {missing} does not exist" in page.json()["message"]
    assert env.client.post("/api/incidents/999999/acknowledge", headers=api).status_code == 404
    unknown = env.client.post(f"/incidents/{incident_id}/actions", data={"csrf_token": csrf, "action": "explode"},
                              headers=headers)
    assert unknown.status_code == 422 and "unknown action 'explode'" in unknown.json()["message"]
    past = {"csrf_token": csrf, "action": "snooze", "until": "2020-01-01T00:00"}
    assert env.client.post(f"/incidents/{incident_id}/actions", data=past, headers=headers).status_code == 422
    assert env.client.post(f"/api/incidents/{incident_id}/snooze", json={"until": "2020-01-01T00:00"},
                           headers=api).status_code == 422
    csrf = env.login("alice")
    refused = env.client.post(f"/incidents/{incident_id}/actions", data={"csrf_token": csrf, "action": "resolve"},
                              headers=headers)
    assert refused.status_code == 403
    alice = {"Authorization": f"Bearer {env.tokens['alice']}"}
    assert env.client.post(f"/api/incidents/{incident_id}/resolve", headers=alice).status_code == 403
