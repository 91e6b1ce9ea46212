"""Button clicks: Slack's request signatures, both recorded payload shapes, and the actions they run."""
from __future__ import annotations

import copy
import hashlib
import hmac
import json
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from pydantic import SecretStr
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from alerts.blocks import ACK, CLAIM, RESOLVE, SNOOZE
from alerts.interactivity import dispatch, make_slack_router, parse_block_actions, payload_from_form, verify_signature
from monitor.core.queue import flag_post
from monitor.core.storage.db import transaction
from monitor.core.storage.schema import FlaggedPost, Incident, IncidentEvent, IncidentPost, User
from tests.alerts_support import (  # noqa: F401 - fixtures
    POSTS_FOR_CLAIM, T0, clock, drain, open_incident, slack, slack_senders, slack_settings,
)
from tests.conftest import FIXTURES
from tests.slack_server import Scripted

SLACK = FIXTURES / "slack"
SECRET = "flarewatch-test-signing-secret-not-real"


def _json(name: str) -> dict:
    return json.loads((SLACK / name).read_text(encoding="utf-8"))


# --- signatures ------------------------------------------------------------------------------------


def test_docs_signature_vector_valid_forged_and_stale() -> None:
    v = _json("signing_test_vector_docs.json")
    body = v["raw_body"].encode()
    headers = {"X-Slack-Request-Timestamp": v["X-Slack-Request-Timestamp"],
               "X-Slack-Signature": v["expected_X-Slack-Signature"]}
    now = float(v["X-Slack-Request-Timestamp"])
    assert verify_signature(v["signing_secret"], body, headers, now)
    assert verify_signature(v["signing_secret"], body, headers, now + 300)  # the edge of the window
    assert not verify_signature(v["signing_secret"], v["negative_cases"]["body_tampered"].encode(), headers, now)
    assert not verify_signature(v["signing_secret"], body, headers, v["negative_cases"]["timestamp_too_old_if_now_is"])
    assert not verify_signature(v["signing_secret"], body,
                                {**headers, "X-Slack-Signature": v["negative_cases"]["wrong_version_prefix"]}, now)
    assert not verify_signature("another-secret", body, headers, now)
    assert not verify_signature(v["signing_secret"], body, {"X-Slack-Signature": headers["X-Slack-Signature"]}, now)
    assert not verify_signature(v["signing_secret"], body, {**headers, "X-Slack-Request-Timestamp": "soon"}, now)


def test_recorded_interactivity_request_verifies_and_parses() -> None:
    meta = _json("block_actions_http_request_2026.meta.json")
    body = (SLACK / meta["body_file"]).read_bytes()
    headers = meta["request"]["headers"]
    ts = float(headers["X-Slack-Request-Timestamp"])
    assert verify_signature(meta["signing_secret_for_tests"], body, headers, ts)
    assert not verify_signature(meta["signing_secret_for_tests"], body, headers, ts + 301)
    payload = payload_from_form(body)
    assert payload == _json("block_actions_button_click_2026.json")
    [click] = parse_block_actions(payload)
    assert (click.action_id, click.value, click.user_id, click.channel_id, click.message_ts) == (
        "option-select:option-a", "option-a", "U08REALUSER1", "C08REALCHAN1", "1775407827.773439")


def test_minimal_recorded_click_parses() -> None:
    [click] = parse_block_actions(_json("block_actions_button_click_minimal_2026.json"))
    assert (click.action_id, click.value, click.user_id, click.channel_id, click.message_ts) == (
        "info", None, "U00FAKEUSER1", "C00FAKECHAN1", "1767326126.896109")


def test_other_apps_buttons_change_nothing(sessions, clock) -> None:
    from alerts.settings import AlertSettings

    assert dispatch(sessions, AlertSettings(), clock, _json("block_actions_button_click_2026.json")) == []
    assert dispatch(sessions, AlertSettings(), clock, _json("block_actions_button_click_minimal_2026.json")) == []


# --- clicks end to end -------------------------------------------------------------------------------


def _click(action_id: str, value: str, user: str, channel: str, ts: str) -> dict:
    """The real recorded payload, with our button in it."""
    payload = copy.deepcopy(_json("block_actions_button_click_2026.json"))
    payload["user"]["id"] = user
    payload["container"].update(channel_id=channel, message_ts=ts)
    payload["channel"]["id"] = channel
    payload["message"]["ts"] = ts
    payload["actions"] = [{**payload["actions"][0], "action_id": action_id, "value": value}]
    return payload


def _signed(payload: dict, secret: str, ts: int) -> tuple[bytes, dict[str, str]]:
    body = urlencode({"payload": json.dumps(payload)}).encode()
    signature = "v0=" + hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return body, {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": signature,
                  "Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def posted(sessions, slack, clock):
    settings = slack_settings(slack, slack_signing_secret=SECRET)
    incident_id = open_incident(sessions, settings, clock.now(), posts=POSTS_FOR_CLAIM)
    drain(sessions, slack_senders(settings), clock)
    with transaction(sessions) as session:
        session.add(User(name="grace", role="manager", slack_user_id="U08REALUSER1", active=True, created_at=T0))
        session.add(User(name="heidi", role="manager", slack_user_id="U0GONE001", active=False, created_at=T0))
        session.add(User(name="alice", role="agent", slack_user_id="U0AGENT01", active=True, created_at=T0))
    [parent] = slack.parents()
    return settings, incident_id, parent


def _app(sessions, settings, clock) -> TestClient:
    app = FastAPI()
    app.include_router(make_slack_router(sessions, settings, clock))
    return TestClient(app)


def test_signed_acknowledge_click_runs_the_action_and_updates_slack(sessions, slack, clock, posted) -> None:
    settings, incident_id, parent = posted
    client = _app(sessions, settings, clock)
    payload = _click(ACK, str(incident_id), "U08REALUSER1", "C0ALERTS01", parent["ts"])
    now = int(clock.now().timestamp())

    forged_body, forged = _signed(payload, "not-the-secret", now)
    assert client.post("/slack/actions", content=forged_body, headers=forged).status_code == 401
    stale_body, stale = _signed(payload, SECRET, now - 301)
    assert client.post("/slack/actions", content=stale_body, headers=stale).status_code == 401
    with sessions() as session:
        assert session.get(Incident, incident_id).acknowledged_at is None

    body, headers = _signed(payload, SECRET, now)
    response = client.post("/slack/actions", content=body, headers=headers)
    assert response.status_code == 200 and response.json()["results"] == [f"incident {incident_id} acknowledged by grace"]
    again = client.post("/slack/actions", content=body, headers=headers)  # Slack retries, replays: run once
    assert again.json()["results"] == ["this click was already handled"]
    payload["actions"][0]["action_ts"] = "1775407999.000001"  # a second click on the button
    body, headers = _signed(payload, SECRET, now)
    assert "already acknowledged by grace" in client.post("/slack/actions", content=body,
                                                          headers=headers).json()["results"][0]
    with sessions() as session:
        incident = session.get(Incident, incident_id)
        assert incident.acknowledged_by == "grace" and incident.next_escalation_at is None
        [event] = session.scalars(select(IncidentEvent).where(IncidentEvent.kind == "acknowledged")).all()
        assert event.actor == "grace" and event.data == {"via": "slack"}

    drain(sessions, slack_senders(settings), clock)
    assert [r["text"] for r in slack.replies(parent["ts"])] == ["Acknowledged by grace."]
    [update] = slack.calls_to("chat.update")
    assert update.args["ts"] == parent["ts"] and "acknowledged by grace" in json.dumps(update.args["blocks"])


def test_bad_requests_are_refused(sessions, clock, posted) -> None:
    settings, _, _ = posted
    client = _app(sessions, settings, clock)
    body, headers = _signed({"type": "block_actions"}, SECRET, int(clock.now().timestamp()))
    garbage = b"payload=%7Bnot-json"
    _, garbage_headers = _signed({}, SECRET, int(clock.now().timestamp()))
    garbage_headers["X-Slack-Signature"] = "v0=" + hmac.new(
        SECRET.encode(), f"v0:{garbage_headers['X-Slack-Request-Timestamp']}:".encode() + garbage,
        hashlib.sha256).hexdigest()
    assert client.post("/slack/actions", content=garbage, headers=garbage_headers).status_code == 400
    assert client.post("/slack/actions", content=body, headers={}).status_code == 401
    unconfigured = _app(sessions, settings.model_copy(update={"slack_signing_secret": None}), clock)
    assert unconfigured.post("/slack/actions", content=body, headers=headers).status_code == 404


def test_snooze_resolve_and_the_role_rules(sessions, slack, clock, posted) -> None:
    settings, incident_id, parent = posted
    ts = parent["ts"]
    [unlinked] = dispatch(sessions, settings, clock, _click(SNOOZE, str(incident_id), "U0NEWBIE1", "C0ALERTS01", ts))
    assert not unlinked.changed and "not linked to a flarewatch user" in unlinked.message
    [agent] = dispatch(sessions, settings, clock, _click(SNOOZE, str(incident_id), "U0AGENT01", "C0ALERTS01", ts))
    assert not agent.changed and "needs the manager role; alice is agent" in agent.message
    [snoozed] = dispatch(sessions, settings, clock, _click(SNOOZE, str(incident_id), "U08REALUSER1", "C0ALERTS01", ts))
    assert snoozed.changed
    with sessions() as session:
        incident = session.get(Incident, incident_id)
        assert incident.snoozed_until == T0 + timedelta(hours=1)
        event = session.scalars(select(IncidentEvent).where(IncidentEvent.kind == "snoozed")).one()
        assert event.actor == "grace" and event.data["via"] == "slack"
    [refused] = dispatch(sessions, settings, clock, _click(RESOLVE, str(incident_id), "U0GONE001", "C0ALERTS01", ts))
    assert not refused.changed and "deactivated" in refused.message
    [wrong] = dispatch(sessions, settings, clock, _click(RESOLVE, "999", "U08REALUSER1", "C0ALERTS01", ts))
    assert not wrong.changed and "does not belong" in wrong.message
    [resolved] = dispatch(sessions, settings, clock, _click(RESOLVE, str(incident_id), "U08REALUSER1", "C0ALERTS01", ts))
    assert resolved.changed
    drain(sessions, slack_senders(settings), clock)
    notes = [r["text"] for r in slack.replies(ts)]
    assert notes == ["Snoozed by grace until 2026-11-23T10:00+00:00.", "Resolved by grace."]
    # Clicks that changed something show in the parent message; the refused ones are explained to the clicker.
    assert [(e["user"], e["text"].split(" ", 1)[0]) for e in slack.ephemeral] == [
        ("U0NEWBIE1", ":warning:"), ("U0AGENT01", ":warning:"), ("U0GONE001", ":warning:"),
        ("U08REALUSER1", ":warning:")]
    assert "deactivated" in slack.ephemeral[2]["text"] and "does not belong" in slack.ephemeral[3]["text"]
    slack.script("chat.postEphemeral", Scripted(body={"ok": False, "error": "user_not_in_channel"}))
    second = _click(RESOLVE, str(incident_id), "U08REALUSER1", "C0ALERTS01", ts)
    second["actions"][0]["action_ts"] = "1775407999.000002"  # a new click (the same one again would be a replay)
    [again] = dispatch(sessions, settings, clock, second)
    assert not again.changed and "already resolved" in again.message  # a failed reply loses nothing
    assert len(slack.calls_to("chat.postEphemeral")) == 5


def test_claim_top_post_uses_the_claim_queue(sessions, slack, clock, posted) -> None:
    settings, incident_id, parent = posted
    settings = settings.model_copy(update={"web_base_url": "https://fw.example"})
    with transaction(sessions) as session:
        links = session.scalars(select(IncidentPost.post_id).where(IncidentPost.incident_id == incident_id)).all()
        for urgency, post_id in enumerate(sorted(links)):
            flag_post(session, post_id=post_id, brand="acme", reason="negative, high reach", urgency=float(urgency),
                      incident_id=incident_id, now=clock.now())
    top = max(links)
    [first] = dispatch(sessions, settings, clock, _click(CLAIM, str(incident_id), "U08REALUSER1", "C0ALERTS01",
                                                         parent["ts"]))
    assert first.changed, first.message
    [second] = dispatch(sessions, settings, clock, _click(CLAIM, f"{incident_id}:{top}", "U0AGENT01", "C0ALERTS01",
                                                          parent["ts"]))  # agents may claim posts
    assert not second.changed and "claimed by grace" in second.message
    # Only the clickers hear about their own clicks: the winner gets the post, the loser who holds it.
    assert [(e["user"], e["channel"]) for e in slack.ephemeral] == [("U08REALUSER1", "C0ALERTS01"),
                                                                      ("U0AGENT01", "C0ALERTS01")]
    won, lost = (e["text"] for e in slack.ephemeral)
    assert won.startswith(":white_check_mark:") and f"<https://fw.example/posts/{top}|open the post>" in won
    assert lost.startswith(":warning:") and f"post {top} is already claimed by grace" in lost
    with sessions() as session:
        flag = session.get(FlaggedPost, top)
        assert flag.state == "claimed" and flag.claimed_by == "grace"
        claimed = session.scalars(select(IncidentEvent).where(IncidentEvent.kind == "post_claimed")).all()
        assert [(e.actor, e.data["post_id"]) for e in claimed] == [("grace", top)]
    drain(sessions, slack_senders(settings), clock)
    [note] = slack.replies(parent["ts"])
    assert note["text"] == "grace claimed a post by loud &lt;customer&gt; to answer."


def test_socket_mode_click_is_acknowledged_and_dispatched(sessions, slack, clock, posted) -> None:
    """Socket Mode: slack_sdk's client opens a real WebSocket to a local server that sends one click."""
    import queue
    import threading

    from websockets.sync.server import serve

    from alerts.interactivity import start_socket_mode

    settings, incident_id, parent = posted
    acks: queue.Queue[dict] = queue.Queue()
    envelope = {"envelope_id": "env-1", "type": "interactive", "accepts_response_payload": False,
                "payload": _click(ACK, str(incident_id), "U08REALUSER1", "C0ALERTS01", parent["ts"])}

    def session(ws) -> None:
        ws.send(json.dumps({"type": "hello", "num_connections": 1}))
        ws.send(json.dumps(envelope))
        try:
            for message in ws:
                acks.put(json.loads(message))
        except Exception:
            pass

    with serve(session, "127.0.0.1", 0) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        slack.socket_url = f"ws://127.0.0.1:{server.socket.getsockname()[1]}/link"
        client = start_socket_mode(sessions, settings.model_copy(update={"slack_app_token": SecretStr("xapp-test-token")}), clock)
        try:
            assert acks.get(timeout=10) == {"envelope_id": "env-1"}
            for _ in range(100):
                with sessions() as s:
                    if s.get(Incident, incident_id).acknowledged_by:
                        break
                threading.Event().wait(0.05)
        finally:
            client.close()
            server.shutdown()
    with sessions() as s:
        assert s.get(Incident, incident_id).acknowledged_by == "grace"
