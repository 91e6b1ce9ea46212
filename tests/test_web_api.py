"""The REST API: every route under every role, error bodies, pagination, queue actions."""
from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from itertools import count
from typing import Any

import httpx
from pydantic import SecretStr

from monitor.core import accounts
from monitor.core.storage.db import transaction
from monitor.core.storage.schema import FlaggedPost, IncidentEvent, Source
from tests.queue_seed import T0, add_flagged, add_incident
from tests.web_fixtures import WebEnv, web  # noqa: F401 - the fixture

ROLES = {"alice": "agent", "mona": "manager", "ada": "admin"}
LEVEL = {"agent": 0, "manager": 1, "admin": 2}
_names = count()


def _routes(env: WebEnv) -> list[tuple[str, Callable[[], str], str, Callable[[], Any] | None, int]]:
    """(method, path maker, least role, body maker, success status); makers seed what they need."""
    with transaction(env.sessions) as s:
        incident = add_incident(s)
        post = add_flagged(s, incident=incident)
        s.add(IncidentEvent(incident_id=incident.id, at=T0, kind="opened", actor=None, data={"z": 4.2}))
        s.add(Source(name="acme-hook", brand="acme", kind="webhook", consecutive_failures=0, posts_fetched=0,
                     items_rejected=0))
        incident_id, post_id = incident.id, post.id

    def fresh_post() -> int:
        return env.seed(add_flagged)

    def fresh_incident(status: str = "open") -> int:
        def make(s: Any) -> int:
            row = add_incident(s)
            row.status = status
            return row.id

        return env.seed(make)

    def fresh_token() -> int:
        def issue(s: Any) -> int:
            accounts.issue_token(s, accounts.get_user(s, "alice"), "to revoke", T0)
            return accounts.list_tokens(s, "alice")[-1].id

        return env.seed(issue)

    return [
        ("GET", lambda: "/api/me", "agent", None, 200),
        ("GET", lambda: "/api/posts", "agent", None, 200),
        ("GET", lambda: f"/api/posts/{post_id}", "agent", None, 200),
        ("GET", lambda: "/api/queue?mine=true", "agent", None, 200),
        ("POST", lambda: f"/api/posts/{fresh_post()}/claim", "agent", None, 200),
        ("POST", lambda: f"/api/posts/{fresh_post()}/answer", "agent",
         lambda: {"url": "https://social.example/r/1", "note": "sorted"}, 200),
        ("POST", lambda: f"/api/posts/{fresh_post()}/dismiss", "agent", lambda: {"reason": "spam"}, 200),
        ("GET", lambda: "/api/incidents", "manager", None, 200),
        ("GET", lambda: f"/api/incidents/{incident_id}", "manager", None, 200),
        ("GET", lambda: f"/api/incidents/{incident_id}/events", "manager", None, 200),
        ("GET", lambda: "/api/sources", "manager", None, 200),
        ("GET", lambda: f"/api/incidents/{incident_id}/timeline", "manager", None, 200),
        ("GET", lambda: f"/api/incidents/{incident_id}/report?format=md", "manager", None, 200),
        ("GET", lambda: "/api/reports/weekly", "manager", None, 200),
        ("POST", lambda: f"/api/incidents/{fresh_incident()}/acknowledge", "manager", None, 200),
        ("POST", lambda: f"/api/incidents/{fresh_incident()}/snooze", "manager", lambda: {"until": "30m"}, 200),
        ("POST", lambda: f"/api/incidents/{fresh_incident()}/resolve", "manager", None, 200),
        ("POST", lambda: f"/api/incidents/{fresh_incident('resolved')}/reopen", "manager", None, 200),
        ("POST", lambda: f"/api/incidents/{fresh_incident()}/assign", "manager", lambda: {"owner": "bob"}, 200),
        ("POST", lambda: f"/api/incidents/{fresh_incident()}/notes", "manager", lambda: {"text": "on it"}, 200),
        ("POST", lambda: f"/api/incidents/{fresh_incident()}/silence", "manager", lambda: {"until": "1h"}, 200),
        ("POST", lambda: "/api/silences", "manager", lambda: {"brand": "ACME", "until": "1h"}, 200),
        ("GET", lambda: "/api/users", "admin", None, 200),
        ("POST", lambda: "/api/users", "admin", lambda: {"name": f"new{next(_names)}", "role": "agent",
                                                          "password": "long-enough"}, 201),
        ("POST", lambda: "/api/users/alice/tokens", "admin", lambda: {"label": "script"}, 201),
        ("PATCH", lambda: "/api/users/alice", "admin", lambda: {"slack_user_id": ""}, 200),
        ("GET", lambda: "/api/users/alice/tokens", "admin", None, 200),
        ("DELETE", lambda: f"/api/users/alice/tokens/{fresh_token()}", "admin", None, 204),
    ]


def _assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    if code:
        assert error["code"] == code
    return error


def test_every_route_under_every_role(web: WebEnv) -> None:  # noqa: F811
    for method, path, least, body, ok in _routes(web):
        payload = body() if body else None
        _assert_error(web.client.request(method, path(), json=payload), 401, "unauthorized")
        _assert_error(web.client.request(method, path(), json=payload, headers={"Authorization": "Bearer fw_nope"}),
                      401, "unauthorized")
        for user, role in ROLES.items():
            response = web.client.request(method, path(), json=body() if body else None, headers=web.auth(user))
            if LEVEL[role] >= LEVEL[least]:
                assert response.status_code == ok, (method, path(), user, response.text)
            else:
                error = _assert_error(response, 403, "forbidden")
                assert least in error["message"], (method, path(), user)


def test_every_api_route_is_covered_and_documented(web: WebEnv) -> None:  # noqa: F811
    spec = web.client.get("/api/openapi.json").json()
    documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    expected = {
        ("GET", "/api/me"), ("GET", "/api/posts"), ("GET", "/api/posts/{post_id}"), ("GET", "/api/queue"),
        ("POST", "/api/posts/{post_id}/claim"), ("POST", "/api/posts/{post_id}/release"),
        ("POST", "/api/posts/{post_id}/answer"), ("POST", "/api/posts/{post_id}/dismiss"),
        ("GET", "/api/incidents"), ("GET", "/api/incidents/{incident_id}"),
        ("GET", "/api/incidents/{incident_id}/events"), ("GET", "/api/sources"), ("GET", "/api/users"),
        ("POST", "/api/users"), ("POST", "/api/users/{name}/tokens"), ("POST", "/api/ingest/{source}"),
        ("PATCH", "/api/users/{name}"), ("GET", "/api/users/{name}/tokens"),
        ("DELETE", "/api/users/{name}/tokens/{token_id}"),
        ("GET", "/healthz"), ("GET", "/metrics"),
        ("GET", "/api/incidents/{incident_id}/timeline"), ("GET", "/api/incidents/{incident_id}/report"),
        ("GET", "/api/reports/weekly"),
        *(("POST", f"/api/incidents/{{incident_id}}/{action}")
          for action in ("acknowledge", "snooze", "resolve", "reopen", "assign", "notes", "silence")),
        ("POST", "/api/silences"),
    }
    assert documented == expected  # a new route must be added here (and to the role matrix)
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    assert all(ops_security for p, ops in spec["paths"].items() if p.startswith("/api/")
               for ops_security in [op.get("security") for op in ops.values()])


def test_claim_conflict_release_and_answer(web: WebEnv) -> None:  # noqa: F811
    post_id = web.seed(add_flagged)
    won = web.client.post(f"/api/posts/{post_id}/claim", headers=web.auth("alice"))
    assert won.status_code == 200 and won.json()["flag"]["claimed_by"] == "alice"
    expires = datetime.fromisoformat(won.json()["flag"]["claim_expires_at"])
    assert expires == T0 + timedelta(minutes=30)
    lost = _assert_error(web.client.post(f"/api/posts/{post_id}/claim", headers=web.auth("bob")), 409, "conflict")
    assert "alice" in lost["message"]
    _assert_error(web.client.post(f"/api/posts/{post_id}/answer", headers=web.auth("bob"),
                                  json={"url": "https://a.example/x"}), 409, "conflict")
    _assert_error(web.client.post(f"/api/posts/{post_id}/release", headers=web.auth("bob")), 409)
    _assert_error(web.client.post(f"/api/posts/{post_id}/release?force=true", headers=web.auth("bob")), 403)
    assert web.client.post(f"/api/posts/{post_id}/release?force=true", headers=web.auth("mona")).json()["flag"][
        "state"] == "open"
    assert web.client.post(f"/api/posts/{post_id}/claim", headers=web.auth("bob")).status_code == 200
    assert web.client.post(f"/api/posts/{post_id}/release", headers=web.auth("bob")).status_code == 200
    answered = web.client.post(f"/api/posts/{post_id}/answer", headers=web.auth("alice"),
                               json={"url": "https://social.example/reply/9", "note": "refund sent"})
    assert answered.json()["flag"]["state"] == "answered"
    assert web.client.get("/api/queue", headers=web.auth("alice")).json()["total"] == 0
    detail = web.client.get(f"/api/posts/{post_id}", headers=web.auth("alice")).json()
    assert [(e["kind"], e["actor"]) for e in detail["history"]] == [
        ("flagged", None), ("claimed", "alice"), ("released", "mona"), ("claimed", "bob"), ("released", "bob"),
        ("answered", "alice")]
    assert detail["queue"]["flag"]["answer_url"] == "https://social.example/reply/9"
    _assert_error(web.client.post("/api/posts/424242/claim", headers=web.auth("alice")), 404, "not_flagged")
    _assert_error(web.client.get("/api/posts/424242", headers=web.auth("alice")), 404, "not_found")


def test_lapsed_claim_shows_open_and_can_be_claimed(web: WebEnv) -> None:  # noqa: F811
    post_id = web.seed(add_flagged)
    assert web.client.post(f"/api/posts/{post_id}/claim", headers=web.auth("alice")).status_code == 200
    web.clock.advance(timedelta(minutes=31))
    item = web.client.get("/api/queue", headers=web.auth("bob")).json()["items"][0]
    assert item["flag"]["state"] == "open" and item["flag"]["claimed_by"] is None
    assert web.client.get("/api/queue?mine=true", headers=web.auth("alice")).json()["total"] == 0
    assert web.client.post(f"/api/posts/{post_id}/claim", headers=web.auth("bob")).status_code == 200


def test_queue_filters_and_pagination(web: WebEnv) -> None:  # noqa: F811
    with transaction(web.sessions) as s:
        incident = add_incident(s, severity=4)
        ids = [add_flagged(s, urgency=float(u + 1)).id for u in range(5)]
        severe = add_flagged(s, urgency=0.5, incident=incident, lang="zh").id
        globex = add_flagged(s, brand="globex", source="globex-hook", urgency=0.1).id
    first = web.client.get("/api/queue?limit=3", headers=web.auth("alice")).json()
    assert (first["total"], first["next_offset"]) == (7, 3)
    assert [i["post"]["id"] for i in first["items"]] == [ids[4], ids[3], ids[2]]
    last = web.client.get("/api/queue?limit=3&offset=6", headers=web.auth("alice")).json()
    assert (last["next_offset"], [i["post"]["id"] for i in last["items"]]) == (None, [globex])
    assert [i["post"]["id"] for i in web.client.get("/api/queue?severity=3", headers=web.auth("alice")).json()[
        "items"]] == [severe]
    assert web.client.get("/api/queue?language=zh", headers=web.auth("alice")).json()["total"] == 1
    assert web.client.get("/api/queue?brand=globex", headers=web.auth("alice")).json()["total"] == 1
    assert web.client.get("/api/queue?source=acme-hook", headers=web.auth("alice")).json()["total"] == 6
    posts = web.client.get("/api/posts?brand=acme&limit=2", headers=web.auth("alice")).json()
    assert (posts["total"], len(posts["items"]), posts["next_offset"]) == (6, 2, 2)


BAD_INPUT = [
    ("GET", "/api/queue?limit=0", None),
    ("GET", "/api/queue?limit=abc", None),
    ("GET", "/api/queue?offset=-1", None),
    ("GET", "/api/queue?severity=999999999999999999999", None),
    ("GET", "/api/queue?brand=%00", None),
    ("GET", "/api/posts?source=" + "x" * 300, None),
    ("GET", "/api/posts/99999999999999999999999", None),
    ("GET", "/api/posts/abc", None),
    ("GET", "/api/posts/-1", None),
    ("GET", "/api/incidents?status=bogus", None),
    ("POST", "/api/posts/1/answer", {}),
    ("POST", "/api/posts/1/answer", {"url": "javascript:alert(1)"}),
    ("POST", "/api/posts/1/answer", {"url": "https://ok.example/x", "extra": 1}),
    ("POST", "/api/posts/1/answer", {"url": "https://ok.example/\u0000"}),
    ("POST", "/api/posts/1/answer", [1, 2]),
    ("POST", "/api/posts/1/dismiss", {"reason": ""}),
    ("POST", "/api/posts/1/dismiss", "not json"),
    ("POST", "/api/users", {"name": "x", "role": "god"}),
    ("POST", "/api/users", {"name": "\u0000", "role": "agent"}),
    ("POST", "/api/users/%00/tokens", None),
    ("PATCH", "/api/users/alice", {"role": "agent", "extra": 1}),
    ("PATCH", "/api/users/alice", {"role": None}),
    ("PATCH", "/api/users/alice", {"active": None}),
    ("PATCH", "/api/users/alice", {"role": "god"}),
    ("PATCH", "/api/users/alice", {"password": "short"}),
    ("PATCH", "/api/users/alice", {"slack_user_id": "not-a-slack-id"}),
    ("PATCH", "/api/users/alice", {"slack_user_id": "U" + "1" * 60}),
    ("PATCH", "/api/users/alice", [1]),
    ("GET", "/api/users/%00/tokens", None),
    ("DELETE", "/api/users/alice/tokens/abc", None),
    ("DELETE", "/api/users/alice/tokens/0", None),
    ("DELETE", "/api/users/alice/tokens/99999999999999999999999", None),
]


def test_bad_input_gets_4xx_with_the_error_body(web: WebEnv) -> None:  # noqa: F811
    web.seed(add_flagged)
    for method, path, body in BAD_INPUT:
        kwargs: dict[str, Any] = {"content": body} if isinstance(body, str) else {"json": body}
        response = web.client.request(method, path, headers=web.auth("ada") | {"Content-Type": "application/json"},
                                      **kwargs)
        assert 400 <= response.status_code < 500, (method, path, body, response.text)
        assert set(response.json()) == {"error"} and response.json()["error"]["code"], (method, path)


def test_users_and_tokens_via_api(web: WebEnv) -> None:  # noqa: F811
    created = web.client.post("/api/users", headers=web.auth("ada"), json={"name": "zoe", "role": "manager"})
    assert created.status_code == 201
    _assert_error(web.client.post("/api/users", headers=web.auth("ada"), json={"name": "zoe", "role": "agent"}), 409)
    token = web.client.post("/api/users/zoe/tokens", headers=web.auth("ada")).json()["token"]
    me = web.client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me == {"name": "zoe", "role": "manager"}
    _assert_error(web.client.post("/api/users/nobody/tokens", headers=web.auth("ada")), 404)
    with transaction(web.sessions) as s:  # a deactivated user's tokens stop working
        accounts.get_user(s, "zoe").active = False
    _assert_error(web.client.get("/api/me", headers={"Authorization": f"Bearer {token}"}), 401)


def _patch(web: WebEnv, name: str, body: Any) -> httpx.Response:
    return web.client.patch(f"/api/users/{name}", headers=web.auth("ada"), json=body)


def test_change_users_via_api(web: WebEnv) -> None:  # noqa: F811
    _assert_error(web.client.get("/api/incidents", headers=web.auth("alice")), 403)
    changed = _patch(web, "alice", {"role": "manager", "slack_user_id": "U0ALICE01"})
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["role"], body["slack_user_id"], body["active"], body["has_password"]) == (
        "manager", "U0ALICE01", True, True)
    assert web.client.get("/api/incidents", headers=web.auth("alice")).status_code == 200  # at once
    listed = {u["name"]: u for u in web.client.get("/api/users", headers=web.auth("ada")).json()["items"]}
    assert listed["alice"]["slack_user_id"] == "U0ALICE01" and listed["bob"]["slack_user_id"] is None
    conflict = _assert_error(_patch(web, "bob", {"slack_user_id": "U0ALICE01"}), 409, "conflict")
    assert "already belongs to alice" in conflict["message"]
    _assert_error(_patch(web, "bob", {"slack_user_id": "u0bob"}), 422, "invalid_request")
    _assert_error(_patch(web, "nobody", {"role": "agent"}), 404, "not_found")
    last = _assert_error(_patch(web, "ada", {"role": "manager"}), 409, "conflict")
    assert "last active admin" in last["message"]
    _assert_error(_patch(web, "ada", {"active": False}), 409)
    assert _patch(web, "alice", {"password": None, "slack_user_id": None}).json()["has_password"] is False
    assert _patch(web, "alice", {}).json()["slack_user_id"] is None
    with transaction(web.sessions) as s:
        assert accounts.authenticate(s, "alice", "alice-password") is None
        assert accounts.get_user(s, "alice").role == "manager"
    assert _patch(web, "alice", {"password": "brand new pw"}).json()["has_password"] is True
    with transaction(web.sessions) as s:
        assert accounts.authenticate(s, "alice", "brand new pw") is not None


def test_deactivation_via_api_releases_claims(web: WebEnv) -> None:  # noqa: F811
    with transaction(web.sessions) as s:
        incident = add_incident(s)
        incident_id, post_id = incident.id, add_flagged(s, incident=incident).id
    assert web.client.post(f"/api/posts/{post_id}/claim", headers=web.auth("bob")).status_code == 200
    gone = _patch(web, "bob", {"active": False})
    assert gone.status_code == 200 and gone.json()["active"] is False
    _assert_error(web.client.get("/api/me", headers=web.auth("bob")), 401, "unauthorized")
    item = web.client.get(f"/api/posts/{post_id}", headers=web.auth("alice")).json()
    assert item["queue"]["flag"]["state"] == "open"
    assert [(e["kind"], e["actor"], e["data"]) for e in item["history"]][-1] == ("released", "ada", {"holder": "bob"})
    events = web.client.get(f"/api/incidents/{incident_id}/events", headers=web.auth("mona")).json()["items"]
    assert (events[-1]["kind"], events[-1]["actor"]) == ("post_released", "ada")
    assert web.client.post(f"/api/posts/{post_id}/claim", headers=web.auth("alice")).status_code == 200
    assert _patch(web, "bob", {"active": True}).json()["active"] is True
    assert web.client.get("/api/me", headers=web.auth("bob")).json()["name"] == "bob"


def test_list_and_revoke_tokens_via_api(web: WebEnv) -> None:  # noqa: F811
    extra = web.client.post("/api/users/alice/tokens", headers=web.auth("ada"), json={"label": "<b>crm</b>"})
    extra_token = extra.json()["token"]
    assert web.client.get("/api/me", headers={"Authorization": f"Bearer {extra_token}"}).status_code == 200
    listed = web.client.get("/api/users/alice/tokens", headers=web.auth("ada")).json()
    assert listed["total"] == 2 and [t["label"] for t in listed["items"]] == ["tests", "<b>crm</b>"]
    assert set(listed["items"][0]) == {"id", "label", "created_at", "last_used_at"}
    assert extra_token not in str(listed) and web.tokens["alice"] not in str(listed)
    assert listed["items"][0]["last_used_at"] is None and listed["items"][1]["last_used_at"] is not None
    extra_id = listed["items"][1]["id"]
    bob_token_id = web.client.get("/api/users/bob/tokens", headers=web.auth("ada")).json()["items"][0]["id"]
    _assert_error(web.client.delete(f"/api/users/alice/tokens/{bob_token_id}", headers=web.auth("ada")), 404)
    revoked = web.client.delete(f"/api/users/alice/tokens/{extra_id}", headers=web.auth("ada"))
    assert revoked.status_code == 204 and revoked.content == b""
    _assert_error(web.client.get("/api/me", headers={"Authorization": f"Bearer {extra_token}"}), 401)
    assert web.client.get("/api/me", headers=web.auth("alice")).status_code == 200
    _assert_error(web.client.delete(f"/api/users/alice/tokens/{extra_id}", headers=web.auth("ada")), 404)
    _assert_error(web.client.get("/api/users/nobody/tokens", headers=web.auth("ada")), 404)


def test_incidents_sources_and_healthz(web: WebEnv) -> None:  # noqa: F811
    with transaction(web.sessions) as s:
        incident = add_incident(s, title="Refunds stuck")
        s.add_all([
            IncidentEvent(incident_id=incident.id, at=T0 + timedelta(minutes=2), kind="escalated", actor=None, data={}),
            IncidentEvent(incident_id=incident.id, at=T0, kind="opened", actor=None, data={"z": 5}),
            Source(name="acme-hook", brand="acme", kind="webhook", consecutive_failures=0, posts_fetched=3,
                   items_rejected=0, last_success_at=T0 - timedelta(minutes=1), last_post_at=T0 - timedelta(minutes=1)),
            Source(name="globex-hook", brand="globex", kind="webhook", consecutive_failures=0, posts_fetched=0,
                   items_rejected=0, last_success_at=T0),  # pushes that all were rejected: no post yet
            Source(name="old-source", brand="acme", kind="rss", consecutive_failures=0, posts_fetched=0,
                   items_rejected=0),
        ])
    listed = web.client.get("/api/incidents?status=open", headers=web.auth("mona")).json()
    assert [i["title"] for i in listed["items"]] == ["Refunds stuck"]
    assert listed["items"][0]["alert_state"] == "none"
    events = web.client.get(f"/api/incidents/{incident.id}/events", headers=web.auth("mona")).json()
    assert [e["kind"] for e in events["items"]] == ["opened", "escalated"]
    _assert_error(web.client.get("/api/incidents/9999", headers=web.auth("mona")), 404)
    _assert_error(web.client.get("/api/incidents/9999/events", headers=web.auth("mona")), 404)
    listed_sources = web.client.get("/api/sources", headers=web.auth("mona")).json()["items"]
    sources = {s["name"]: (s["status"], s["mode"]) for s in listed_sources}
    assert sources == {"acme-hook": ("ok", "push"), "acme-private": ("never", "push"),  # configured, nothing yet
                       "globex-hook": ("never", "push"), "old-source": ("unconfigured", "poll")}
    health = web.client.get("/healthz")
    assert health.status_code == 200
    body = health.json()
    assert body["ok"] and body["status"] == "ok" and body["reasons"] == []
    assert set(body["checks"]) == {"database", "sources", "jobs", "alerts", "storage"}
    assert body["checks"]["database"]["ok"] and body["checks"]["alerts"] == {"ok": True, "problems": [],
                                                                           "slack_auth": None}
    sources_check = body["checks"]["sources"]
    assert sources_check["counts"]["never"] == 2 and sources_check["status"]["acme-hook"] == "ok"
    assert sources_check["status"]["acme-private"] == "never"  # configured, nothing pushed yet
    assert body["daemon"] == {"jobs": {"poll": {"runs": 3, "failures": 0}}}
    # A push integration that went quiet: stale after an hour without a post (the default for push sources).
    web.clock.advance(timedelta(hours=2))
    body = web.client.get("/healthz").json()
    assert body["checks"]["sources"]["status"]["acme-hook"] == "stale"
    assert not body["ok"] and body["status"] == "degraded"
    assert body["reasons"] == [{"check": "sources", "code": "source_stale", "message": "source acme-hook is stale"}]


def test_many_clients_claim_through_the_api_and_one_wins(web: WebEnv) -> None:  # noqa: F811
    post_id = web.seed(add_flagged)
    with transaction(web.sessions) as s:
        tokens = [accounts.issue_token(s, accounts.create_user(s, f"racer{i}", "agent", None, T0), "race", T0)
                  for i in range(16)]

    async def race() -> list[int]:
        transport = httpx.ASGITransport(app=web.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            responses = await asyncio.gather(*[
                client.post(f"/api/posts/{post_id}/claim", headers={"Authorization": f"Bearer {t}"}) for t in tokens])
        return [r.status_code for r in responses]

    statuses = asyncio.run(race())
    assert sorted(statuses) == [200] + [409] * 15
    with web.sessions() as s:
        assert s.get(FlaggedPost, post_id).claimed_by.startswith("racer")


def test_ingest_webhook(web: WebEnv) -> None:  # noqa: F811
    good = {"id": "w1", "text": "acme lost my parcel", "created_at": "2026-07-04T11:59:00Z", "author": "pat"}
    other = {"id": "w2", "text": "acme support is great", "created_at": "2026-07-04T11:59:30Z"}
    bad = {"id": "w3", "text": "", "created_at": "yesterday"}
    nul = {"id": "w4", "text": "acme", "created_at": "2026-07-04T11:59:30Z", "author": "a\u0000b"}
    shared = {"Authorization": "Bearer shared-ingest-token"}
    _assert_error(web.client.post("/api/ingest/acme-hook", json=[good]), 401)
    _assert_error(web.client.post("/api/ingest/acme-hook", json=[good], headers={"Authorization": "Bearer no"}), 401)
    _assert_error(web.client.post("/api/ingest/nope", json=[good], headers=shared), 404)
    _assert_error(web.client.post("/api/ingest/nope", json=[good]), 401)  # no probing without the token
    _assert_error(web.client.post("/api/ingest/acme-private", json=[good], headers=shared), 401)
    _assert_error(web.client.post("/api/ingest/acme-hook", content=b"{not json", headers=shared), 400)
    _assert_error(web.client.post("/api/ingest/acme-hook", json={"a": 1}, headers=shared), 400)
    _assert_error(web.client.post("/api/ingest/acme-hook", json=[bad], headers=shared), 422)
    mixed = web.client.post("/api/ingest/acme-hook", json=[good, bad, other, nul], headers=shared)
    assert mixed.status_code == 207, mixed.text
    assert mixed.json()["stored"] == 3 and len(mixed.json()["rejected"]) == 1  # the NUL is dropped, not fatal
    assert mixed.json()["rejected"][0].startswith("item 1:")
    again = web.client.post("/api/ingest/acme-hook", json=[good], headers=shared)
    assert again.status_code == 200 and again.json()["already_seen"] == 1
    private = web.client.post("/api/ingest/acme-private", json=[good],
                              headers={"Authorization": "Bearer private-token"})
    assert private.json()["duplicates"] == 1  # same text as w1 in the same brand: a re-post
    posts = web.client.get("/api/posts?source=acme-hook", headers=web.auth("alice")).json()["items"]
    assert sorted(p["external_id"] for p in posts) == ["w1", "w2", "w4"]
    with web.sessions() as s:
        source = s.get(Source, "acme-hook")
        assert (source.posts_fetched, source.items_rejected, source.brand) == (3, 2, "acme")
    web.config.web.ingest_token = None
    _assert_error(web.client.post("/api/ingest/acme-hook", json=[good], headers=shared), 404)


def test_slack_interactivity_is_mounted_and_checks_signatures(web: WebEnv) -> None:  # noqa: F811
    assert web.client.post("/slack/actions", content=b"payload=%7B%7D").status_code == 404  # no signing secret
    web.config.alerts.slack_signing_secret = SecretStr("signing-secret")
    response = web.client.post("/slack/actions", content=b"payload=%7B%7D",
                               headers={"X-Slack-Signature": "v0=bad", "X-Slack-Request-Timestamp": "1"})
    assert response.status_code == 401


def test_random_input_never_gets_a_500(web: WebEnv) -> None:  # noqa: F811
    from urllib.parse import quote_from_bytes

    from hypothesis import HealthCheck, given, settings, strategies as st

    post_id = web.seed(add_flagged)
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["url", "note", "reason", "name",
                                                                                   "role", "password", "x"]), inner,
                                                                  max_size=4),
        max_leaves=8,
    )
    routes = st.sampled_from([
        ("GET", "/api/queue?{k}={v}"), ("GET", "/api/posts?{k}={v}"), ("GET", "/api/incidents?{k}={v}"),
        ("GET", "/api/posts/{v}"), ("POST", "/api/posts/{v}/claim"), ("POST", f"/api/posts/{post_id}/answer"),
        ("POST", f"/api/posts/{post_id}/dismiss"), ("POST", "/api/users"), ("POST", "/api/users/{v}/tokens"),
        ("PATCH", "/api/users/{v}"), ("PATCH", "/api/users/bob"), ("GET", "/api/users/{v}/tokens"),
        ("DELETE", "/api/users/bob/tokens/{v}"),
        ("POST", "/api/ingest/acme-hook"),
    ])

    @settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(route=routes, key=st.sampled_from(["brand", "source", "language", "severity", "limit", "offset",
                                               "status", "mine"]),
           raw=st.binary(max_size=40), body=json_values)
    def check(route: tuple[str, str], key: str, raw: bytes, body: Any) -> None:
        method, template = route
        path = template.format(k=key, v=quote_from_bytes(raw, safe=""))
        ingest = {"Authorization": "Bearer shared-ingest-token"}
        headers = ingest if "ingest" in path else web.auth("ada")
        response = web.client.request(method, path, json=body if method in ("POST", "PATCH") else None,
                                      headers=headers)
        assert response.status_code < 500, (method, path, body, response.text)

    check()


def test_a_post_shows_its_sentiment_and_incident_even_when_not_queued(web: WebEnv) -> None:  # noqa: F811
    from monitor.core.storage.schema import IncidentPost
    from tests.queue_seed import add_post

    with transaction(web.sessions) as session:
        incident = add_incident(session)
        post = add_post(session, text="acme router dead", sentiment=-0.96, lang="en")
        session.add(IncidentPost(incident_id=incident.id, post_id=post.id, added_at=T0))
        post_id, incident_id = post.id, incident.id
    body = web.client.get(f"/api/posts/{post_id}", headers=web.auth("alice")).json()
    assert body["queue"] is None and body["sentiment"] == -0.96 and body["label"] == "negative"
    assert body["incident_id"] == incident_id
    login_page = web.client.get("/login")
    import re

    token = re.search(r'name="csrf_token" value="([^"]+)"', login_page.text).group(1)
    web.client.post("/login", data={"username": "alice", "password": "alice-password", "csrf_token": token})
    page = web.client.get(f"/posts/{post_id}").text
    assert "negative (-0.96" in page and f"#{incident_id}" in page and "not scored" not in page


def test_the_role_is_checked_before_the_row_is_looked_up(web: WebEnv) -> None:  # noqa: F811
    """Nobody learns whether an incident, post or user exists without the role to see it."""
    for path in ("/api/incidents/987654", "/api/incidents/987654/events", "/api/incidents/987654/timeline"):
        _assert_error(web.client.get(path), 401, "unauthorized")
        _assert_error(web.client.get(path, headers=web.auth("alice")), 403, "forbidden")
        _assert_error(web.client.get(path, headers=web.auth("mona")), 404, "not_found")
    _assert_error(web.client.get("/api/posts/987654"), 401, "unauthorized")
    _assert_error(web.client.post("/api/users/nobody/tokens", headers=web.auth("mona")), 403, "forbidden")
    page = web.client.get("/incidents/987654/report", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")


def test_a_failed_commit_is_the_answer_not_a_success_already_sent(web: WebEnv) -> None:  # noqa: F811
    """A route's transaction commits before its answer goes out: a database that refuses the commit
    gives 503 with Retry-After, and nothing is stored."""
    from sqlalchemy import event, select
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.orm import Session

    from monitor.core.storage.schema import User

    def refuse(session: Session) -> None:  # only the transaction that holds the new user
        if session.scalar(select(User.id).where(User.name == "kim")) is not None:
            raise OperationalError("COMMIT", {}, Exception("database is locked"))

    event.listen(Session, "before_commit", refuse)
    try:
        response = web.client.post("/api/users", headers=web.auth("ada"), json={"name": "kim", "role": "agent"})
    finally:
        event.remove(Session, "before_commit", refuse)
    _assert_error(response, 503, "unavailable")
    assert response.headers["retry-after"]
    with transaction(web.sessions) as s:
        assert accounts.get_user(s, "kim") is None


def test_the_page_the_api_healthz_and_metrics_show_the_same_sources(web: WebEnv) -> None:  # noqa: F811
    """One read (monitor.core.sources.sources_with_status) behind every surface: each configured source,
    run or not, disabled ones, and stored ones no longer configured, with the same status everywhere."""
    from prometheus_client.parser import text_string_to_metric_families

    from monitor.config import SourceConfig

    web.config.brands[0].sources.append(SourceConfig(name="acme-off", kind="webhook", enabled=False))
    with transaction(web.sessions) as s:
        s.add_all([
            Source(name="acme-hook", brand="acme", kind="webhook", consecutive_failures=0, posts_fetched=3,
                   items_rejected=0, last_post_at=T0 - timedelta(hours=3)),  # a push source gone quiet
            Source(name="acme-off", brand="acme", kind="webhook", consecutive_failures=0, posts_fetched=1,
                   items_rejected=0, last_post_at=T0 - timedelta(days=9)),
            Source(name="old-source", brand="acme", kind="rss", consecutive_failures=2, posts_fetched=0,
                   items_rejected=0, last_error="HTTP 503"),
        ])
    expected = {"acme-hook": "stale", "acme-off": "disabled", "acme-private": "never", "globex-hook": "never",
                "old-source": "unconfigured"}
    api = web.client.get("/api/sources", headers=web.auth("mona")).json()
    assert {s["name"]: s["status"] for s in api["items"]} == expected and api["total"] == 5
    assert [s["name"] for s in api["items"]] == ["acme-hook", "acme-off", "acme-private", "old-source", "globex-hook"]
    never = next(s for s in api["items"] if s["name"] == "acme-private")
    assert never["posts_fetched"] == 0 and never["last_success_at"] is None and never["mode"] == "push"
    health = web.client.get("/healthz").json()["checks"]["sources"]
    assert health["status"] == expected and not health["ok"]
    assert health["counts"] == {"ok": 0, "failing": 0, "needs_credentials": 0, "stale": 1, "never": 2, "disabled": 1,
                                "unconfigured": 1}
    metrics = {s.labels["source"]: s.labels["status"]
               for family in text_string_to_metric_families(web.client.get("/metrics").text)
               for s in family.samples if s.name == "flarewatch_source_status" and s.value == 1}
    assert metrics == expected
    web.client.post("/login", data={"username": "mona", "password": "mona-password",
                                    "csrf_token": _page_csrf(web)}, follow_redirects=False)
    page = web.client.get("/sources")
    assert page.status_code == 200, page.text
    shown = dict(re.findall(r"<tr><td>([a-z-]+)</td>.*?<span class=\"status ([a-z_]+)\">", page.text))
    assert shown == expected


def _page_csrf(web: WebEnv) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', web.client.get("/login").text)
    assert match
    return match.group(1)
