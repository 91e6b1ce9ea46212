"""Server-side sessions (issue 17 #5): logout and password changes end them; the cookie is only an id.

Before, the cookie was the signed session itself, so a copied cookie kept opening pages after
logout for the whole 12-hour lifetime.
"""
from __future__ import annotations

import hashlib
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from monitor.core.clock import SimulatedClock
from monitor.core.storage.schema import User, WebSession
from monitor.web.app import create_app
from monitor.web.sessions import COOKIE
from tests.queue_seed import T0, web_config
from tests.test_web_pages import _csrf, login
from tests.web_fixtures import WebEnv, web  # noqa: F401 - fixture


def _copy(env: WebEnv) -> TestClient:
    """Another browser holding a copy of this one's cookie."""
    thief = TestClient(env.app, raise_server_exceptions=False)
    thief.cookies.set(COOKIE, env.client.cookies[COOKIE])
    return thief


def test_a_copied_cookie_opens_nothing_after_logout(web: WebEnv) -> None:  # noqa: F811
    csrf = login(web, "mona")
    thief = _copy(web)
    assert thief.get("/incidents", follow_redirects=False).status_code == 200
    web.client.post("/logout", data={"csrf_token": csrf})
    assert thief.get("/incidents", follow_redirects=False).status_code == 303
    with web.sessions() as session:
        mona = session.scalar(select(User.id).where(User.name == "mona"))
        assert session.scalar(select(func.count()).where(WebSession.user_id == mona)) == 0


def test_the_cookie_is_only_a_random_id(web: WebEnv) -> None:  # noqa: F811
    login(web, "mona")
    value = web.client.cookies[COOKIE]
    assert 40 <= len(value) <= 64 and "." not in value and "mona" not in value
    with web.sessions() as session:
        row = session.get(WebSession, hashlib.sha256(value.encode()).hexdigest())  # stored hashed, never as is
        assert row is not None and row.data["user"] == "mona"
        assert row.expires_at == T0 + timedelta(hours=web.config.web.session_hours)


def test_login_gives_a_new_id_so_a_planted_one_is_worthless(web: WebEnv) -> None:  # noqa: F811
    page = web.client.get("/login")
    planted = web.client.cookies[COOKIE]
    web.client.post("/login", data={"username": "mona", "password": "mona-password", "csrf_token": _csrf(page.text),
                                    "next": "/queue"}, follow_redirects=False)
    assert web.client.cookies[COOKIE] != planted
    victim = TestClient(web.app, raise_server_exceptions=False)
    victim.cookies.set(COOKIE, planted)
    assert victim.get("/incidents", follow_redirects=False).status_code == 303


def test_a_password_change_or_deactivation_ends_every_session_of_that_user(web: WebEnv) -> None:  # noqa: F811
    login(web, "bob")
    thief = _copy(web)
    assert web.client.patch("/api/users/bob", json={"password": "a new password 123"},
                            headers=web.auth("ada")).status_code == 200
    assert thief.get("/queue", follow_redirects=False).status_code == 303
    assert web.client.get("/queue", follow_redirects=False).status_code == 303
    login(web, "bob", "a new password 123")
    thief = _copy(web)
    assert web.client.patch("/api/users/bob", json={"active": False}, headers=web.auth("ada")).status_code == 200
    assert thief.get("/queue", follow_redirects=False).status_code == 303


def test_sessions_are_shared_by_replicas_and_logout_ends_them_on_all(web: WebEnv) -> None:  # noqa: F811
    csrf = login(web, "mona")
    other = TestClient(create_app(web_config(), web.sessions, SimulatedClock(T0)), raise_server_exceptions=False)
    other.cookies.set(COOKIE, web.client.cookies[COOKIE])
    assert other.get("/incidents", follow_redirects=False).status_code == 200
    web.client.post("/logout", data={"csrf_token": csrf})
    assert other.get("/incidents", follow_redirects=False).status_code == 303


def test_a_login_ends_after_session_hours(web: WebEnv) -> None:  # noqa: F811
    login(web, "mona")
    web.clock.advance(timedelta(hours=web.config.web.session_hours) - timedelta(minutes=1))
    assert web.client.get("/incidents", follow_redirects=False).status_code == 200
    web.clock.advance(timedelta(minutes=2))
    assert web.client.get("/incidents", follow_redirects=False).status_code == 303
