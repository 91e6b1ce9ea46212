"""The claim queue on SQLite and PostgreSQL: claims, lapses, answers, events, concurrency."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from monitor.core import queue
from monitor.core.clock import SimulatedClock
from monitor.core.storage.db import transaction
from monitor.core.storage.schema import FlaggedPost, IncidentEvent, PostEvent
from tests.queue_seed import T0, add_flagged, add_incident, add_post


def _flag(sessions: sessionmaker[Session], **kw: object) -> int:
    with transaction(sessions) as s:
        return add_flagged(s, **kw).id


def _kinds(sessions: sessionmaker[Session], model: type, **where: object) -> list[tuple[str, str | None]]:
    with sessions() as s:
        rows = s.scalars(select(model).filter_by(**where).order_by(model.id))
        return [(r.kind, r.actor) for r in rows]


def test_flag_is_idempotent_and_keeps_highest_urgency(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        post = add_post(s)
        incident = add_incident(s)
        queue.flag_post(s, post_id=post.id, brand="acme", reason="high reach", urgency=2.0, incident_id=None, now=T0)
        queue.flag_post(s, post_id=post.id, brand="acme", reason="in incident", urgency=5.0,
                        incident_id=incident.id, now=T0 + timedelta(minutes=1))
        queue.flag_post(s, post_id=post.id, brand="acme", reason="again", urgency=1.0, incident_id=None, now=T0)
    with sessions() as s:
        flag = s.get(FlaggedPost, post.id)
        assert (flag.urgency, flag.incident_id, flag.state, flag.reason) == (5.0, incident.id, "open", "high reach")
    assert _kinds(sessions, PostEvent, post_id=post.id) == [("flagged", None)]


def test_claim_answer_flow_writes_post_and_incident_events(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        incident = add_incident(s)
        post_id = add_flagged(s, incident=incident).id
    with transaction(sessions) as s:
        assert queue.claim(s, post_id, "alice", T0, 30)
    with transaction(sessions) as s:
        assert not queue.claim(s, post_id, "bob", T0 + timedelta(minutes=5), 30)
        with pytest.raises(queue.ClaimConflict, match="claimed by alice"):
            queue.answer(s, post_id, "bob", "https://x.example/r", None, T0)
    with transaction(sessions) as s:
        queue.answer(s, post_id, "alice", "https://social.example/reply/1", "apologised", T0 + timedelta(minutes=6))
    with sessions() as s:
        flag = s.get(FlaggedPost, post_id)
        assert (flag.state, flag.claimed_by, flag.answer_url, flag.note) == (
            "answered", "alice", "https://social.example/reply/1", "apologised")
        assert flag.answered_at == T0 + timedelta(minutes=6)
        events = s.scalars(select(IncidentEvent).where(IncidentEvent.incident_id == incident.id)
                           .order_by(IncidentEvent.id)).all()
        assert [(e.kind, e.actor, e.data["post_id"]) for e in events] == [
            ("post_claimed", "alice", post_id), ("post_answered", "alice", post_id)]
    assert _kinds(sessions, PostEvent, post_id=post_id) == [
        ("flagged", None), ("claimed", "alice"), ("answered", "alice")]
    with transaction(sessions) as s:  # closed posts stay closed
        assert not queue.claim(s, post_id, "bob", T0 + timedelta(hours=2), 30)
        with pytest.raises(queue.ClaimConflict, match="already answered"):
            queue.dismiss(s, post_id, "alice", "dup", T0)


def test_release_and_forced_release(sessions: sessionmaker[Session]) -> None:
    post_id = _flag(sessions)
    with transaction(sessions) as s:
        assert queue.claim(s, post_id, "alice", T0, 30)
    with transaction(sessions) as s, pytest.raises(queue.ClaimConflict):
        queue.release(s, post_id, "bob", T0)
    with transaction(sessions) as s:
        queue.release(s, post_id, "mona", T0, force=True)
    with transaction(sessions) as s:
        assert s.get(FlaggedPost, post_id).state == "open"
        with pytest.raises(queue.ClaimConflict, match="not claimed"):
            queue.release(s, post_id, "alice", T0)
    with transaction(sessions) as s, pytest.raises(queue.NotFlagged):
        queue.claim(s, 999_999, "alice", T0, 30)
    with sessions() as s:
        released = s.scalars(select(PostEvent).where(PostEvent.kind == "released")).one()
        assert (released.actor, released.data) == ("mona", {"holder": "alice"})


def test_untouched_claim_lapses_back_to_queue(sessions: sessionmaker[Session]) -> None:
    clock = SimulatedClock(T0)
    incident_post = _flag(sessions, incident=None)
    renewed = _flag(sessions)
    with transaction(sessions) as s:
        assert queue.claim(s, incident_post, "alice", clock.now(), 10)
        assert queue.claim(s, renewed, "bob", clock.now(), 10)
    clock.advance(timedelta(minutes=8))
    with transaction(sessions) as s:
        assert queue.claim(s, renewed, "bob", clock.now(), 10)  # touching renews bob's claim
        assert queue.lapse_expired(s, clock.now()) == 0
    clock.advance(timedelta(minutes=3))  # alice's claim is 11 minutes old, bob's renewal 3
    with transaction(sessions) as s:
        # Before the lapse job runs, the lapsed claim is already claimable by someone else...
        items, total = queue.list_queue(s, queue.QueueFilters(mine="alice"), queue.PageRequest(), clock.now())
        assert total == 0
    with transaction(sessions) as s:
        assert queue.lapse_expired(s, clock.now()) == 1
        assert queue.lapse_expired(s, clock.now()) == 0
    with sessions() as s:
        assert s.get(FlaggedPost, incident_post).state == "open"
        assert s.get(FlaggedPost, incident_post).claimed_by is None
        assert s.get(FlaggedPost, renewed).claimed_by == "bob"
    lapsed = _kinds(sessions, PostEvent, post_id=incident_post)
    assert lapsed[-1] == ("lapsed", None)
    clock.advance(timedelta(minutes=1))
    with transaction(sessions) as s:  # and anyone may claim it now
        assert queue.claim(s, incident_post, "bob", clock.now(), 10)


def test_expired_claim_can_be_taken_before_the_lapse_job(sessions: sessionmaker[Session]) -> None:
    post_id = _flag(sessions)
    with transaction(sessions) as s:
        assert queue.claim(s, post_id, "alice", T0, 10)
    with transaction(sessions) as s:
        assert not queue.claim(s, post_id, "bob", T0 + timedelta(minutes=9), 10)
        assert queue.claim(s, post_id, "bob", T0 + timedelta(minutes=11), 10)
    with sessions() as s:
        assert s.get(FlaggedPost, post_id).claimed_by == "bob"


def test_list_queue_filters_and_orders_by_urgency(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        incident = add_incident(s, severity=4)
        low = add_flagged(s, urgency=1.0, lang="fr").id
        high = add_flagged(s, urgency=9.0, incident=incident).id
        other = add_flagged(s, urgency=5.0, brand="globex", source="globex-hook", text="globex is down").id
        closed = add_flagged(s, urgency=20.0).id
        queue.dismiss(s, closed, "alice", "spam", T0)
        queue.claim(s, low, "alice", T0, 30)

    def ids(**filters: object) -> list[int]:
        with sessions() as s:
            items, total = queue.list_queue(s, queue.QueueFilters(**filters), queue.PageRequest(), T0)
            assert total == len(items)
            return [i.post.id for i in items]

    assert ids() == [high, other, low]
    assert ids(brand="globex") == [other]
    assert ids(source="acme-hook") == [high, low]
    assert ids(language="fr") == [low]
    assert ids(min_severity=3) == [high]
    assert ids(mine="alice") == [low]
    assert ids(mine="bob") == []
    with sessions() as s:
        items, total = queue.list_queue(s, queue.QueueFilters(), queue.PageRequest(limit=1, offset=1), T0)
        assert (total, [i.post.id for i in items]) == (3, [other])
        assert items[0].sentiment == pytest.approx(-0.8) and items[0].label == "negative"


def test_many_clients_claiming_at_once_exactly_one_wins(sessions: sessionmaker[Session]) -> None:
    post_id = _flag(sessions)
    clients = 16
    start = threading.Barrier(clients)
    results: dict[str, bool | BaseException] = {}

    def client(name: str) -> None:
        try:
            with sessions() as session:
                start.wait(timeout=30)
                with session.begin():
                    results[name] = queue.claim(session, post_id, name, T0, 30)
        except BaseException as exc:  # noqa: BLE001 - recorded and asserted below
            results[name] = exc

    threads = [threading.Thread(target=client, args=(f"agent{i}",)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert all(isinstance(v, bool) for v in results.values()), results
    winners = [name for name, won in results.items() if won is True]
    assert len(results) == clients and len(winners) == 1
    with sessions() as s:
        assert s.get(FlaggedPost, post_id).claimed_by == winners[0]
        claimed = s.scalar(select(func.count()).select_from(PostEvent).where(PostEvent.kind == "claimed"))
        assert claimed == 1
