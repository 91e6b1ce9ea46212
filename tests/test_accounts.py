"""Staff account lifecycle on SQLite and PostgreSQL: role, password, Slack id, deactivation, tokens."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from monitor.core.incidents import ActionError
from alerts.interactivity import actor_for
from monitor.core import accounts, queue
from monitor.core.storage.db import transaction
from monitor.core.storage.schema import FlaggedPost, IncidentEvent, PostEvent, User
from tests.queue_seed import T0, add_flagged, add_incident, add_staff

NOW = T0 + timedelta(minutes=10)


@pytest.fixture
def tokens(sessions: sessionmaker[Session]) -> dict[str, str]:
    with transaction(sessions) as s:
        return add_staff(s)  # alice, bob (agents), mona (manager), ada (admin)


def _user(sessions: sessionmaker[Session], name: str) -> User:
    with sessions() as s:
        user = accounts.get_user(s, name)
        assert user is not None
        return user


def test_role_password_and_slack_id_change(sessions: sessionmaker[Session], tokens: dict[str, str]) -> None:
    with transaction(sessions) as s:
        changed = accounts.update_user(s, "alice", NOW, actor="ada", role="manager", password="new password 1",
                                       slack_user_id=" U012AB3CD ")
        assert changed.released == []
    alice = _user(sessions, "alice")
    assert (alice.role, alice.slack_user_id, alice.active) == ("manager", "U012AB3CD", True)
    with transaction(sessions) as s:
        assert accounts.authenticate(s, "alice", "new password 1") is not None
        assert accounts.authenticate(s, "alice", "alice-password") is None
        assert actor_for(s, "U012AB3CD") == "alice"  # her Slack clicks act as her
        accounts.update_user(s, "alice", NOW, actor="ada", password=None)  # page login off, tokens still work
        assert accounts.authenticate(s, "alice", "new password 1") is None
        assert accounts.user_for_token(s, tokens["alice"], NOW) is not None
    with transaction(sessions) as s:
        accounts.update_user(s, "alice", NOW, actor="ada", slack_user_id="")
        assert actor_for(s, "U012AB3CD") == "slack:U012AB3CD"
    assert _user(sessions, "alice").slack_user_id is None
    assert _user(sessions, "alice").role == "manager"  # fields not given are kept


@pytest.mark.parametrize(("changes", "error", "message"), [
    ({"role": "boss"}, accounts.AccountError, "unknown role 'boss'"),
    ({"password": "short"}, accounts.AccountError, "8 to 1000 characters"),
    ({"password": "x" * 1001}, accounts.AccountError, "8 to 1000 characters"),
    ({"slack_user_id": "alice"}, accounts.AccountError, "not a Slack user id"),
    ({"slack_user_id": "U012ab3cd"}, accounts.AccountError, "not a Slack user id"),
    ({"slack_user_id": "UBOBSLACK"}, accounts.AccountConflict, "already belongs to bob"),
])
def test_bad_changes_are_refused_and_change_nothing(sessions: sessionmaker[Session], tokens: dict[str, str],
                                                    changes: dict[str, str], error: type[Exception],
                                                    message: str) -> None:
    with transaction(sessions) as s:
        accounts.update_user(s, "bob", NOW, actor="ada", slack_user_id="UBOBSLACK")
    with transaction(sessions) as s:
        with pytest.raises(error, match=message):
            # Deactivation is asked for too, and must not happen when the rest is refused.
            accounts.update_user(s, "alice", NOW, actor="ada", **{"active": False, **changes})
        alice = accounts.get_user(s, "alice")
        assert (alice.role, alice.active, alice.slack_user_id) == ("agent", True, None)
    with transaction(sessions) as s, pytest.raises(accounts.AccountNotFound, match="no user named 'zed'"):
        accounts.update_user(s, "zed", NOW, actor="ada", role="agent")


def test_deactivation_stops_access_and_releases_claims(sessions: sessionmaker[Session],
                                                       tokens: dict[str, str]) -> None:
    with transaction(sessions) as s:
        incident = add_incident(s)
        held = add_flagged(s, incident=incident).id
        lapsed = add_flagged(s).id
        others = add_flagged(s).id
        answered = add_flagged(s).id
        accounts.update_user(s, "bob", NOW, actor="ada", slack_user_id="UBOBSLACK")
    with transaction(sessions) as s:
        assert queue.claim(s, held, "bob", NOW, 30)
        assert queue.claim(s, lapsed, "bob", T0 - timedelta(hours=1), 30)  # lapsed, the lapse job has not run
        assert queue.claim(s, others, "alice", NOW, 30)
        queue.answer(s, answered, "bob", "https://social.example/r/1", None, NOW)
    with transaction(sessions) as s:
        changed = accounts.update_user(s, "bob", NOW + timedelta(minutes=1), actor="ada", active=False)
        assert sorted(changed.released) == sorted([held, lapsed])
    with transaction(sessions) as s:
        assert accounts.user_for_token(s, tokens["bob"], NOW) is None
        assert accounts.authenticate(s, "bob", "bob-password") is None
        with pytest.raises(ActionError, match="bob is deactivated"):
            actor_for(s, "UBOBSLACK")
        states = {p: (s.get(FlaggedPost, p).state, s.get(FlaggedPost, p).claimed_by)
                  for p in (held, lapsed, others, answered)}
        assert states == {held: ("open", None), lapsed: ("open", None), others: ("claimed", "alice"),
                          answered: ("answered", "bob")}
        last = s.scalars(select(PostEvent).where(PostEvent.post_id == held).order_by(PostEvent.id.desc())).first()
        assert (last.kind, last.actor, last.data) == ("released", "ada", {"holder": "bob"})
        timeline = s.scalars(select(IncidentEvent).where(IncidentEvent.incident_id == incident.id)
                             .order_by(IncidentEvent.id)).all()
        assert [(e.kind, e.actor) for e in timeline] == [("post_claimed", "bob"), ("post_released", "ada")]
        assert timeline[-1].data == {"post_id": held, "holder": "bob"}
    with transaction(sessions) as s:  # reactivated: the same token and password work again
        assert accounts.update_user(s, "bob", NOW, actor="ada", active=True).released == []
        assert accounts.user_for_token(s, tokens["bob"], NOW) is not None
        assert accounts.authenticate(s, "bob", "bob-password") is not None


def test_the_last_active_admin_cannot_be_demoted_or_deactivated(sessions: sessionmaker[Session],
                                                                tokens: dict[str, str]) -> None:
    with transaction(sessions) as s:
        accounts.create_user(s, "old", "admin", None, T0).active = False  # an inactive admin does not count
    for changes in ({"role": "manager"}, {"active": False}, {"role": "agent", "active": False}):
        with transaction(sessions) as s, pytest.raises(accounts.AccountConflict, match="ada is the last active admin"):
            accounts.update_user(s, "ada", NOW, actor="ada", **changes)
    with transaction(sessions) as s:
        accounts.update_user(s, "ada", NOW, actor="ada", role="admin", active=True, password="still ada 1")
        accounts.update_user(s, "mona", NOW, actor="ada", role="admin")
    with transaction(sessions) as s:
        accounts.update_user(s, "ada", NOW, actor="mona", active=False)
    with transaction(sessions) as s, pytest.raises(accounts.AccountConflict, match="mona is the last active admin"):
        accounts.update_user(s, "mona", NOW, actor="mona", role="agent")
    assert (_user(sessions, "ada").active, _user(sessions, "mona").role) == (False, "admin")


def test_tokens_are_listed_without_secrets_and_revoked(sessions: sessionmaker[Session],
                                                       tokens: dict[str, str]) -> None:
    with transaction(sessions) as s:
        alice = accounts.get_user(s, "alice")
        second = accounts.issue_token(s, alice, "crm sync", NOW)
        accounts.user_for_token(s, second, NOW + timedelta(minutes=5))
    with transaction(sessions) as s:
        listed = accounts.list_tokens(s, "alice")
        assert [(t.label, t.created_at, t.last_used_at) for t in listed] == [
            ("tests", T0, None), ("crm sync", NOW, NOW + timedelta(minutes=5))]
        assert not any(second in repr(t) or tokens["alice"] in repr(t) for t in listed)
        bobs = accounts.list_tokens(s, "bob")
        with pytest.raises(accounts.AccountNotFound, match="alice has no API token"):
            accounts.revoke_token(s, "alice", bobs[0].id)  # someone else's token
        with pytest.raises(accounts.AccountNotFound):
            accounts.revoke_token(s, "alice", 2**70)
        with pytest.raises(accounts.AccountNotFound, match="no user named"):
            accounts.list_tokens(s, "nobody")
        accounts.revoke_token(s, "alice", listed[1].id)
    with transaction(sessions) as s:
        assert accounts.user_for_token(s, second, NOW) is None
        assert accounts.user_for_token(s, tokens["alice"], NOW) is not None
        assert accounts.token_counts(s)[accounts.get_user(s, "alice").id] == 1
        assert accounts.revoke_all_tokens(s, "alice") == 1
        assert accounts.revoke_all_tokens(s, "alice") == 0
        assert accounts.user_for_token(s, tokens["alice"], NOW) is None
        assert accounts.user_for_token(s, tokens["bob"], NOW) is not None


def test_two_admins_deactivating_each_other_at_once_leave_one(sessions: sessionmaker[Session],
                                                              tokens: dict[str, str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    with transaction(sessions) as s:
        accounts.update_user(s, "mona", NOW, actor="ada", role="admin")
    real_release, both_wrote = accounts._release_claims, threading.Barrier(2)

    def release_once_both_wrote(*args: object) -> list[int]:
        try:  # hold the first commit until the other has written too, if it can
            both_wrote.wait(timeout=2)
        except threading.BrokenBarrierError:
            pass  # the other waits on our lock, as it should
        return real_release(*args)

    monkeypatch.setattr(accounts, "_release_claims", release_once_both_wrote)
    results: dict[str, object] = {}

    def deactivate(actor: str, target: str) -> None:
        try:
            with transaction(sessions) as session:
                accounts.update_user(session, target, NOW, actor=actor, active=False)
            results[target] = "done"
        except BaseException as exc:  # noqa: BLE001 - recorded and asserted below
            results[target] = exc

    threads = [threading.Thread(target=deactivate, args=pair) for pair in (("ada", "mona"), ("mona", "ada"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(map(str, results.values())).count("done") == 1, results
    assert any(isinstance(v, accounts.AccountConflict) for v in results.values()), results
    with sessions() as s:
        assert len(s.scalars(select(User.name).where(User.role == "admin", User.active.is_(True))).all()) == 1


def test_user_names_are_unique_regardless_of_case(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        accounts.create_user(session, "Alex", "agent", None, T0)
    for name in ("alex", "ALEX", "Alex"):
        with pytest.raises(accounts.AccountConflict, match="already exists"), transaction(sessions) as session:
            accounts.create_user(session, name, "agent", None, T0)
    with sessions() as session:
        assert session.scalars(select(User.name)).all() == ["Alex"]
