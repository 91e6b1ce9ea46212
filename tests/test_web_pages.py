"""The server-rendered pages: login, roles, CSRF, queue actions, escaping of hostile post text."""
from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from alerts.interactivity import actor_for
from monitor.core.clock import SimulatedClock
from monitor.core.storage.db import transaction
from monitor.core.storage.schema import FlaggedPost, IncidentEvent, Source, User
from monitor.web.app import create_app
from tests.queue_seed import T0, add_flagged, add_incident, add_staff, web_config
from tests.web_fixtures import WebEnv, web  # noqa: F401 - the fixture

XSS_TEXT = 'acme <script>window.__xss=1</script><img src=x onerror="window.__xss=2"> "quoted" & done'
XSS_AUTHOR = '<svg onload="window.__xss=3">mallory</svg>'
XSS_URL = "javascript:window.__xss=4"


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def login(env: WebEnv, user: str, password: str | None = None) -> str:
    """Log in through the form; returns the session's CSRF token."""
    page = env.client.get("/login")
    response = env.client.post("/login", data={"username": user, "password": password or f"{user}-password",
                                               "csrf_token": _csrf(page.text), "next": "/queue"},
                               follow_redirects=False)
    assert response.status_code == 303, response.text
    return _csrf(env.client.get("/queue").text)


def test_pages_need_login_and_the_right_role(web: WebEnv) -> None:  # noqa: F811
    with transaction(web.sessions) as s:
        incident_id = add_incident(s).id
        post_id = add_flagged(s).id
    pages = {"/queue": "agent", "/queue/rows": "agent", f"/posts/{post_id}": "agent", "/incidents": "manager",
             f"/incidents/{incident_id}": "manager", "/sources": "manager", "/admin/users": "admin"}
    levels = ("agent", "manager", "admin")
    for path in pages:
        response = web.client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login?next="), path
    for user, role in (("alice", "agent"), ("mona", "manager"), ("ada", "admin")):
        web.client.cookies.clear()
        login(web, user)
        for path, least in pages.items():
            response = web.client.get(path)
            allowed = levels.index(role) >= levels.index(least)
            assert response.status_code == (200 if allowed else 403), (user, path)
            assert response.headers["content-type"].startswith("text/html")
            if not allowed:  # the refusal keeps the navigation bar and who is logged in
                assert 'href="/queue">Queue</a>' in response.text and f"{user} <small>" in response.text
    web.client.cookies.clear()
    page = web.client.get("/login")
    wrong = web.client.post("/login", data={"username": "alice", "password": "nope", "csrf_token": _csrf(page.text)})
    assert wrong.status_code == 401 and "Wrong user name or password" in wrong.text
    forged = web.client.post("/login", data={"username": "alice", "password": "alice-password", "csrf_token": "x"})
    assert forged.status_code == 403


def test_forms_need_the_csrf_token(web: WebEnv) -> None:  # noqa: F811
    post_id = web.seed(add_flagged)
    login(web, "alice")
    for action, data in (("claim", {}), ("answer", {"url": "https://a.example/r"}), ("dismiss", {"reason": "x"})):
        response = web.client.post(f"/posts/{post_id}/{action}", data={**data, "csrf_token": "forged"})
        assert response.status_code == 403, action
    with web.sessions() as s:
        assert s.get(FlaggedPost, post_id).state == "open"


def test_claim_answer_and_dismiss_through_the_pages(web: WebEnv) -> None:  # noqa: F811
    with transaction(web.sessions) as s:
        incident = add_incident(s)
        first = add_flagged(s, urgency=5, incident=incident, text="acme refund never came").id
        second = add_flagged(s, urgency=3, text="acme app crashes").id
    csrf = login(web, "alice")
    queue_page = web.client.get("/queue").text
    assert queue_page.index(f'data-post-id="{first}"') < queue_page.index(f'data-post-id="{second}"')
    claimed = web.client.post(f"/posts/{first}/claim", data={"csrf_token": csrf, "next": "/queue"})
    assert claimed.url.path == "/queue" and f"Post {first} is yours" in claimed.text
    assert "Yours until 12:30 UTC" in claimed.text
    rows = web.client.get("/queue/rows?mine=1").text
    assert f'data-post-id="{first}"' in rows and f'data-post-id="{second}"' not in rows
    bad = web.client.post(f"/posts/{first}/answer", data={"csrf_token": csrf, "url": "javascript:alert(1)"})
    assert "Not done: url: Value error, must be an http(s) URL" in bad.text
    done = web.client.post(f"/posts/{first}/answer",
                           data={"csrf_token": csrf, "url": "https://social.example/r/1", "note": "refunded"})
    assert done.status_code == 200 and f'data-post-id="{first}"' not in done.text
    post_page = web.client.get(f"/posts/{first}").text
    assert "answered" in post_page and "https://social.example/r/1" in post_page and "refunded" in post_page
    web.client.cookies.clear()
    csrf_bob = login(web, "bob")
    taken = web.client.post(f"/posts/{second}/claim", data={"csrf_token": csrf_bob})
    assert "Not done" not in taken.text
    web.client.cookies.clear()
    csrf = login(web, "alice")
    refused = web.client.post(f"/posts/{second}/dismiss", data={"csrf_token": csrf, "reason": "spam"})
    assert "Not done: post" in refused.text and "claimed by bob" in refused.text
    web.clock.advance(timedelta(minutes=31))  # bob's claim lapses; alice may now dismiss it
    web.client.post(f"/posts/{second}/dismiss", data={"csrf_token": csrf, "reason": "spam"})
    with web.sessions() as s:
        assert s.get(FlaggedPost, second).state == "dismissed"
        kinds = s.scalars(select(IncidentEvent.kind).where(IncidentEvent.incident_id == incident.id)).all()
        assert kinds == ["post_claimed", "post_answered"]
    assert web.client.get("/queue/rows").text.count("data-post-id=") == 0


def test_hostile_post_text_and_author_are_escaped(web: WebEnv) -> None:  # noqa: F811
    post_id = web.seed(add_flagged, text=XSS_TEXT, author=XSS_AUTHOR, url=XSS_URL)
    login(web, "mona")
    for path in ("/queue", "/queue/rows", f"/posts/{post_id}"):
        html = web.client.get(path).text
        assert "<script>window.__xss" not in html and "<img src=x" not in html and "<svg" not in html, path
        assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in html, path
        assert "&lt;svg onload=" in html, path
        assert "javascript:" not in html, path
    response = web.client.get(f"/posts/{post_id}")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert "&#34;quoted&#34; &amp; done" in response.text


def test_manager_pages_show_incidents_and_sources(web: WebEnv) -> None:  # noqa: F811
    with transaction(web.sessions) as s:
        incident = add_incident(s, title="<b>Outage</b>")
        s.add(IncidentEvent(incident_id=incident.id, at=T0, kind="opened", actor=None, data={"z": 6.1}))
        s.add(Source(name="globex-hook", brand="globex", kind="webhook", consecutive_failures=3, posts_fetched=0,
                     items_rejected=0, last_error="<script>boom</script>"))
    login(web, "mona")
    listing = web.client.get("/incidents").text
    assert "&lt;b&gt;Outage&lt;/b&gt;" in listing
    detail = web.client.get(f"/incidents/{incident.id}").text
    assert "opened" in detail and "z: 6.1" in detail
    sources = web.client.get("/sources").text
    assert "never" in sources and "&lt;script&gt;boom" in sources


def test_bad_page_input_is_4xx_and_redirects_stay_local(web: WebEnv) -> None:  # noqa: F811
    csrf = login(web, "alice")
    for path in ("/posts/abc", "/posts/99999999999999999999999", "/posts/424242", "/incidents/abc",
                 "/queue?severity=%00&brand=%00&language=" + "x" * 500):
        response = web.client.get(path)
        assert response.status_code in (200, 400, 403, 404), (path, response.status_code)
    assert web.client.get("/queue?severity=abc").status_code == 200
    post_id = web.seed(add_flagged)
    response = web.client.post(f"/posts/{post_id}/claim", data={"csrf_token": csrf, "next": "//evil.example/x"},
                               follow_redirects=False)
    assert response.headers["location"] == f"/posts/{post_id}"
    page = web.client.get("/login?next=https://evil.example")
    assert 'name="next" value="/queue"' in page.text


def test_live_refresh_leaves_the_flash_message_for_the_page(web: WebEnv) -> None:  # noqa: F811
    post_id = web.seed(add_flagged)
    csrf = login(web, "alice")
    web.client.post(f"/posts/{post_id}/claim", data={"csrf_token": csrf}, follow_redirects=False)
    assert "is yours" not in web.client.get("/queue/rows").text
    assert f"Post {post_id} is yours" in web.client.get("/queue").text
    assert f"Post {post_id} is yours" not in web.client.get("/queue").text  # shown once


def test_logout_ends_the_session(web: WebEnv) -> None:  # noqa: F811
    csrf = login(web, "alice")
    assert web.client.post("/logout", data={"csrf_token": csrf}).url.path == "/login"
    assert web.client.get("/queue", follow_redirects=False).status_code == 303


def test_static_files_and_the_api_are_separate_worlds(web: WebEnv) -> None:  # noqa: F811
    login(web, "ada")  # a page session is not an API credential
    assert web.client.get("/api/me").status_code == 401
    assert web.client.get("/static/style.css").status_code == 200


def test_wrong_passwords_lock_the_account_for_a_while(web: WebEnv) -> None:  # noqa: F811
    def attempt(user: str, password: str) -> object:
        page = web.client.get("/login")
        return web.client.post("/login", data={"username": user, "password": password, "csrf_token": _csrf(page.text)},
                               follow_redirects=False)

    limit = int(web.config.web.login_failures_per_account.split()[0])
    for _ in range(limit):
        assert attempt("alice", "guess").status_code == 401
    locked = attempt("alice", "alice-password")  # the right password is refused too: no oracle for guessers
    assert locked.status_code == 429 and "Too many wrong passwords" in locked.text
    assert 0 < int(locked.headers["Retry-After"]) <= 15 * 60
    assert attempt("ALICE", "alice-password").status_code == 429  # same account, other spelling
    assert attempt("mona", "mona-password").status_code == 303  # other accounts are unaffected
    web.client.cookies.clear()
    # A successful login clears its account's count.
    for _ in range(limit - 1):
        assert attempt("mona", "guess").status_code == 401
    assert attempt("mona", "mona-password").status_code == 303
    web.client.cookies.clear()
    assert attempt("mona", "guess").status_code == 401
    assert attempt("mona", "mona-password").status_code == 303


def test_one_address_cannot_spray_passwords_over_accounts(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        add_staff(session)
    app = create_app(web_config(login_failures_per_address="3 per hour"), sessions, SimulatedClock(T0))
    with TestClient(app) as client:
        def attempt(user: str, password: str) -> int:
            page = client.get("/login")
            return client.post("/login", data={"username": user, "password": password, "csrf_token": _csrf(page.text)},
                               follow_redirects=False).status_code

        assert [attempt(user, "guess") for user in ("alice", "mona", "ada")] == [401, 401, 401]
        assert attempt("bob", "bob-password") == 429


def _users_form(env: WebEnv, csrf: str, name: str, **fields: str) -> object:
    """Submit one row of the users page, with the row's current values unless given."""
    with env.sessions() as s:
        user = s.scalar(select(User).where(User.name == name))
        current = {"role": user.role, "slack_user_id": user.slack_user_id or "",
                   "status": "active" if user.active else "deactivated"}
    return env.client.post("/admin/users/update", data={"csrf_token": csrf, "name": name, **current, **fields})


def test_users_page_is_for_admins_only(web: WebEnv) -> None:  # noqa: F811
    csrf = login(web, "mona")
    assert 'href="/admin/users"' not in web.client.get("/queue").text
    assert web.client.get("/admin/users").status_code == 403
    for path, data in (("/admin/users", {"name": "sneaky", "role": "admin", "password": "long enough"}),
                       ("/admin/users/update", {"name": "mona", "role": "admin", "status": "active"})):
        assert web.client.post(path, data={"csrf_token": csrf, **data}).status_code == 403, path
    web.client.cookies.clear()
    csrf = login(web, "ada")
    page = web.client.get("/admin/users")
    assert page.status_code == 200 and 'href="/admin/users"' in page.text
    forged = web.client.post("/admin/users/update", data={"csrf_token": "forged", "name": "bob", "role": "admin",
                                                          "status": "active"})
    assert forged.status_code == 403
    with web.sessions() as s:
        assert s.scalar(select(User.role).where(User.name == "mona")) == "manager"
        assert s.scalar(select(User.role).where(User.name == "bob")) == "agent"
        assert s.scalar(select(User).where(User.name == "sneaky")) is None


def test_admin_changes_roles_passwords_and_slack_ids(web: WebEnv) -> None:  # noqa: F811
    csrf = login(web, "ada")
    hostile = '<script>window.__xss=5</script>'
    added = web.client.post("/admin/users", data={"csrf_token": csrf, "name": hostile, "role": "agent"})
    assert added.url.path == "/admin/users" and "It has no password" in added.text
    assert "&lt;script&gt;window.__xss=5&lt;/script&gt;" in added.text and hostile not in added.text
    assert "Not done: user &#39;alice&#39; already exists" in web.client.post(
        "/admin/users", data={"csrf_token": csrf, "name": "alice", "role": "agent"}).text
    assert "Not done: a password needs 8" in web.client.post(
        "/admin/users", data={"csrf_token": csrf, "name": "zoe", "role": "agent", "password": "short"}).text

    saved = _users_form(web, csrf, "alice", role="manager", slack_user_id="U0ALICE01")
    assert "Saved alice." in saved.text
    taken = _users_form(web, csrf, "bob", slack_user_id="U0ALICE01")
    assert "Not done: Slack id U0ALICE01 already belongs to alice" in taken.text
    bob = TestClient(web.app)
    login(replace(web, client=bob), "bob")  # bob's own browser, logged in with the old password
    assert bob.get("/queue").status_code == 200
    assert "New password set" in _users_form(web, csrf, "bob", password="bob-new-password").text
    assert bob.get("/queue", follow_redirects=False).status_code == 303  # a reset ends the old sessions
    with web.sessions() as s:
        assert actor_for(s, "U0ALICE01") == "alice"
    web.client.cookies.clear()
    assert web.client.get("/incidents", follow_redirects=False).status_code == 303
    login(web, "alice")
    assert web.client.get("/incidents").status_code == 200  # the new role counts at once
    web.client.cookies.clear()
    page = web.client.get("/login")
    old = web.client.post("/login", data={"username": "bob", "password": "bob-password",
                                          "csrf_token": _csrf(page.text)})
    assert old.status_code == 401
    login(web, "bob", "bob-new-password")


def test_admin_deactivates_a_leaver_and_cannot_lock_everyone_out(web: WebEnv) -> None:  # noqa: F811
    with transaction(web.sessions) as s:
        incident = add_incident(s)
        post_id = add_flagged(s, incident=incident).id
    bob = TestClient(web.app)
    bob_csrf = login(replace(web, client=bob), "bob")  # bob's own browser
    assert bob.post(f"/posts/{post_id}/claim", data={"csrf_token": bob_csrf}).status_code == 200
    csrf = login(web, "ada")
    done = _users_form(web, csrf, "bob", status="deactivated")
    assert f"Saved bob. Posts {post_id} went back to the queue." in done.text
    row = re.search(r"<tr>\s*<td class=\"author\">bob</td>.*?</tr>", done.text, re.S)
    assert row and "<td>deactivated</td>" in row.group(0)
    assert bob.get("/queue", follow_redirects=False).status_code == 303  # the open session ends too
    with web.sessions() as s:
        assert s.get(FlaggedPost, post_id).state == "open"
        event = s.scalars(select(IncidentEvent).where(IncidentEvent.incident_id == incident.id)
                          .order_by(IncidentEvent.id.desc())).first()
        assert (event.kind, event.actor, event.data) == ("post_released", "ada", {"post_id": post_id, "holder": "bob"})
    refused = _users_form(web, csrf, "ada", role="manager")
    assert "Not done: ada is the last active admin" in refused.text and refused.url.path == "/admin/users"
    _users_form(web, csrf, "mona", role="admin")
    demoted = _users_form(web, csrf, "ada", role="manager")  # allowed now; her own page is no longer hers
    assert demoted.url.path == "/queue" and "Saved ada." in demoted.text
    assert web.client.get("/admin/users").status_code == 403


def test_users_form_without_role_or_status_changes_nothing(web: WebEnv) -> None:  # noqa: F811
    csrf = login(web, "ada")
    with transaction(web.sessions) as s:
        s.scalar(select(User).where(User.name == "bob")).active = False
    for missing in ("role", "status"):
        data = {"csrf_token": csrf, "name": "bob", "role": "agent", "status": "active"}
        del data[missing]
        assert web.client.post("/admin/users/update", data=data).status_code == 400, missing
    assert web.client.post("/admin/users/update", data={"csrf_token": csrf, "name": "bob", "role": "agent",
                                                        "status": "gone"}).status_code == 400
    with web.sessions() as s:
        assert s.scalar(select(User.active).where(User.name == "bob")) is False
