"""Validly signed but malformed Slack payloads are 4xx, never 500 (issue 17 #7); replays run once (#9).

Real signatures over real form bodies, through the real router on both databases.
"""
from __future__ import annotations

import copy
import hashlib
import hmac
import json
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from sqlalchemy import func, select

from alerts.blocks import ACK, CLAIM, RESOLVE
from monitor.core.storage.schema import IncidentEvent, SlackAction
from tests.alerts_support import clock, slack  # noqa: F401 - fixtures
from tests.test_alerts_interactivity import SECRET, _app, _click, _signed, posted  # noqa: F401 - fixture

BAD_SHAPES: dict[str, Any] = {
    "user is text": {"user": "U08REALUSER1"},
    "user.id is a number": {"user": {"id": 5}},
    "user is a list": {"user": ["U1"]},
    "container is text": {"container": "C0ALERTS01"},
    "container is a list": {"container": [1, 2]},
    "channel is a number": {"channel": 5},
    "message is text": {"message": "hello"},
    "actions is an object": {"actions": {"action_id": ACK}},
    "an action is text": {"actions": ["acknowledge"]},
    "action_id is a number": {"actions": [{"action_id": 7, "value": "1"}]},
    "value is an object": {"actions": [{"action_id": ACK, "value": {"id": 1}}]},
    "a huge button value": {"actions": [{"action_id": ACK, "value": "9" * 5_000}]},
    "nested 5,000 deep": {"message": {"ts": "1.2", "blocks": "DEEP"}},
}


def _resign(body: bytes, ts: int) -> dict[str, str]:
    signature = "v0=" + hmac.new(SECRET.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": signature,
            "Content-Type": "application/x-www-form-urlencoded"}


@pytest.mark.parametrize("case", sorted(BAD_SHAPES))
def test_malformed_signed_payloads_are_400_with_a_reason(sessions, clock, posted, case: str) -> None:  # noqa: F811
    settings, incident_id, parent = posted
    payload = {**_click(ACK, str(incident_id), "U08REALUSER1", "C0ALERTS01", parent["ts"]), **BAD_SHAPES[case]}
    body, headers = _signed(payload, SECRET, int(clock.now().timestamp()))
    if case == "nested 5,000 deep":  # spliced in as text: json.dumps itself cannot write it
        deep = urlencode({"payload": json.dumps(payload).replace('"DEEP"', "[" * 5_000 + "]" * 5_000)}).encode()
        body, headers = deep, _resign(deep, int(clock.now().timestamp()))
    response = _app(sessions, settings, clock).post("/slack/actions", content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["error"]
    with sessions() as session:
        assert session.scalar(select(func.count(IncidentEvent.id)).where(IncidentEvent.kind == "acknowledged")) == 0


@pytest.mark.parametrize("value", ["99999999999999999999999", "9" * 19, "-1", "0", "1:99999999999999999999"])
def test_button_values_naming_no_possible_incident_are_refused_not_overflowed(
        sessions, clock, posted, value: str) -> None:  # noqa: F811
    settings, incident_id, parent = posted
    for action in (ACK, CLAIM):
        payload = _click(action, value, "U08REALUSER1", "C0ALERTS01", parent["ts"])
        body, headers = _signed(payload, SECRET, int(clock.now().timestamp()))
        response = _app(sessions, settings, clock).post("/slack/actions", content=body, headers=headers)
        assert response.status_code == 200, response.text
        message = response.json()["results"][0]
        assert ("names no incident" in message) if not value.startswith("1:") else ("incident 1" in message), message


def test_a_replayed_signed_click_is_processed_once(sessions, slack, clock, posted) -> None:  # noqa: F811
    settings, incident_id, parent = posted
    client = _app(sessions, settings, clock)
    payload = _click(RESOLVE, str(incident_id), "U08REALUSER1", "C0ALERTS01", parent["ts"])
    body, headers = _signed(payload, SECRET, int(clock.now().timestamp()))
    results = [client.post("/slack/actions", content=body, headers=headers).json()["results"] for _ in range(3)]
    assert results[0][0].endswith("resolved by grace") and results[1:] == [["this click was already handled"]] * 2
    assert slack.ephemeral == []  # nothing was run again, so nobody is told "already resolved"
    with sessions() as session:
        assert session.scalar(select(func.count(IncidentEvent.id)).where(IncidentEvent.kind == "resolved")) == 1
        assert session.scalar(select(func.count()).select_from(SlackAction)) == 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=False)
    | st.text(max_size=30) | st.sampled_from(["block_actions", ACK, CLAIM, "U08REALUSER1", "1", "1:2", "9" * 30]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["type", "user", "id", "actions", "action_id", "value", "container", "channel", "message",
                         "ts", "channel_id", "message_ts", "action_ts", "block_id"]) | st.text(max_size=5),
        inner, max_size=5),
    max_leaves=25,
)


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(junk=json_values, base=st.booleans())
def test_any_signed_payload_is_answered_200_or_400(sessions, clock, posted, junk: Any, base: bool) -> None:  # noqa: F811
    settings, incident_id, parent = posted
    if base and isinstance(junk, dict):
        payload: Any = {**copy.deepcopy(_click(ACK, str(incident_id), "U08REALUSER1", "C0ALERTS01", parent["ts"])),
                        **junk}
    else:
        payload = junk
    body, headers = _signed(payload, SECRET, int(clock.now().timestamp()))
    response = _app(sessions, settings, clock).post("/slack/actions", content=body, headers=headers)
    assert response.status_code in (200, 400), response.text
