"""The incident lifecycle on a simulated clock (SQLite and PostgreSQL)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from monitor.core.clock import SimulatedClock
from monitor.core.ingest import store_posts
from monitor.core.posts import FetchedPost
from monitor.config import BrandConfig, Config
from monitor.pipeline import detect_incidents as detect
from monitor.detection.incidents import evaluate
from monitor.detection.settings import DetectionSettings
from monitor.core.storage.db import transaction
from monitor.core.storage.schema import (
    DetectionBaseline, FlaggedPost, Incident, IncidentEvent, IncidentPost, OutboxMessage, PostEvent,
)
from tests.detection_helpers import T0, add_background, add_scored_post

HISTORY = timedelta(hours=6)


@pytest.fixture
def config() -> Config:
    return Config(
        brands=[BrandConfig(name="Acme", terms=["Acme"])],
        detection=DetectionSettings(warmup_hours=3, severity_excess_posts=[2, 25]),
    )


def _history(sessions) -> None:
    with transaction(sessions) as session:
        add_background(session, T0, T0 + HISTORY)


def _counts(sessions) -> tuple[int, int, int, int]:
    with sessions() as s:
        return tuple(s.scalar(select(func.count()).select_from(t)) for t in (  # type: ignore[return-value]
            Incident, IncidentEvent, OutboxMessage, IncidentPost))


def _events(sessions, incident_id: int) -> list[IncidentEvent]:
    with sessions() as s:
        return list(s.scalars(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id)
                              .order_by(IncidentEvent.id)))


def test_a_surge_opens_grows_and_closes_an_incident(sessions, config) -> None:
    _history(sessions)
    clock = SimulatedClock(T0 + HISTORY)
    assert detect(sessions, config, clock) == []  # steady background: nothing
    with sessions() as s:
        assert s.get(DetectionBaseline, "Acme").folded_until == T0 + HISTORY

    start = T0 + HISTORY
    with transaction(sessions) as session:  # 3 negative posts a minute, background share 20%
        for minute in range(4):
            for i in range(3):
                add_scored_post(session, start + timedelta(minutes=minute, seconds=10 * i + 1), "negative")
    clock.set(start + timedelta(minutes=4))
    changes = detect(sessions, config, clock)
    assert [c.kind for c in changes] == ["opened"]
    with sessions() as s:
        incident = s.scalars(select(Incident)).one()
        assert incident.status == "open" and incident.opened_at == clock.now()
        assert start - timedelta(minutes=10) <= incident.started_at <= start  # the change point, give or take a background post
        opened = s.scalars(select(IncidentEvent).where(IncidentEvent.kind == "opened")).one()
        fired = opened.data["signals"]
        assert {f["detector"] for f in fired} >= {"volume"}
        volume5 = next(f for f in fired if f["key"] == "volume:5m")
        assert volume5["observed"] == 12 and volume5["expected"] < 2 and volume5["p_value"] <= volume5["threshold"]
        # Severity counts the posts beyond what would just fire (12 against a threshold of a few).
        beyond = max(f["observed"] - f["threshold_count"] for f in fired if f["detector"] == "volume")
        assert volume5["threshold_count"] < 12 and beyond >= 2 and incident.severity == 2
        assert len(opened.data["top_posts"]) == 10 and opened.data["sources"]["src-a"]["negative"] >= 12
        linked = s.scalar(select(func.count()).select_from(IncidentPost))
        assert linked == 12 + (incident.started_at <= start - timedelta(minutes=10))  # + a background one
        flagged = list(s.scalars(select(FlaggedPost)))
        assert len(flagged) == config.detection.flag_posts and {f.incident_id for f in flagged} == {incident.id}
        assert s.scalar(select(func.count()).select_from(PostEvent).where(PostEvent.kind == "flagged")) == 5
        assert _alerted_kinds(s) == ["opened"]

    before = _counts(sessions)
    assert detect(sessions, config, clock) == []  # idempotent: same data, same time, no change
    assert _counts(sessions) == before

    with transaction(sessions) as session:  # it grows: 40 more in the next 4 minutes
        for minute in range(4, 8):
            for i in range(10):
                add_scored_post(session, start + timedelta(minutes=minute, seconds=5 * i + 1), "negative")
    clock.set(start + timedelta(minutes=8))
    kinds = [c.kind for c in detect(sessions, config, clock)]
    assert "severity_changed" in kinds and "opened" not in kinds
    with sessions() as s:
        incident = s.scalars(select(Incident)).one()
        assert incident.severity == 3 and incident.detail["peak_excess"] >= 25
        change = s.scalars(select(IncidentEvent).where(IncidentEvent.kind == "severity_changed")).one()
        assert change.data["from"] == 2 and change.data["to"] == 3 and change.data["top_posts"]
        assert s.scalar(select(func.count()).select_from(IncidentPost)) == linked + 40

    # Quiet: still open while the widest window holds the surge, closed once it is back to the
    # baseline (the 60-minute window no longer holds any of the surge's minutes).
    for minute in range(9, 200):
        clock.set(start + timedelta(minutes=minute))
        kinds = [c.kind for c in detect(sessions, config, clock)]
        with sessions() as s:
            incident = s.scalars(select(Incident)).one()
        if "closed" in kinds:
            break
    assert incident.status == "closed" and incident.closed_at == clock.now()
    assert clock.now() >= start + timedelta(minutes=8 + 60)
    closed = _events(sessions, incident.id)[-1]
    widest = closed.data["back_to_baseline"]
    assert widest["window_minutes"] == 60 and widest["observed"] <= widest["expected"]
    kinds = [e.kind for e in _events(sessions, incident.id)]
    assert kinds[0] == "opened" and "severity_changed" in kinds and kinds[-1] == "closed"
    with sessions() as s:
        assert _alerted_kinds(s) == ["opened", "severity_changed", "closed"]


def _alerted_kinds(session) -> list[str]:
    """The kinds of the incident events that have queued alerts, in order."""
    return list(dict.fromkeys(session.scalars(
        select(IncidentEvent.kind).join(OutboxMessage, OutboxMessage.event_id == IncidentEvent.id)
        .order_by(OutboxMessage.id))))


def test_a_viral_post_fires_before_the_volume_moves_and_later_signals_join_it(sessions, config) -> None:
    _history(sessions)
    start = T0 + HISTORY
    with transaction(sessions) as session:
        viral = add_scored_post(session, start + timedelta(seconds=20), "negative", followers=3_000_000, reposts=900)
    clock = SimulatedClock(start + timedelta(minutes=1))
    assert [c.kind for c in detect(sessions, config, clock)] == ["opened"]
    with sessions() as s:
        incident = s.scalars(select(Incident)).one()
        opened = s.scalars(select(IncidentEvent).where(IncidentEvent.kind == "opened")).one()
        assert [f["key"] for f in opened.data["signals"]] == [f"viral:{viral.id}"]
        assert opened.data["signals"][0]["p_reach"] < 0.01 and opened.data["signals"][0]["observed"] == 900
        assert "spreading" in incident.title and incident.started_at == viral.created_at
        assert s.get(FlaggedPost, viral.id).reason.endswith("viral")

    with transaction(sessions) as session:  # then the volume moves: same brand, same incident
        for i in range(15):
            add_scored_post(session, start + timedelta(minutes=1, seconds=10 * i + 1), "negative")
    clock.set(start + timedelta(minutes=4))
    kinds = [c.kind for c in detect(sessions, config, clock)]
    assert "opened" not in kinds and "signal" in kinds
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Incident)) == 1
        signal_keys = [e.data["signal"]["key"] for e in s.scalars(
            select(IncidentEvent).where(IncidentEvent.kind == "signal"))]
        assert "volume:5m" in signal_keys


def _copies_of(text: str, times: list, followers: list[int], reposts: list[int]) -> list[FetchedPost]:
    return [FetchedPost(source="src-b", external_id=f"copy-{t.isoformat()}-{i}", text=text, created_at=t,
                        author=f"sharer{i}", author_followers=f, reposts=r)
            for i, (t, f, r) in enumerate(zip(times, followers, reposts, strict=True))]


def test_an_old_ordinary_complaint_re_shared_now_is_seen_spreading(sessions, config) -> None:
    """Issue 12, the viral blind spot: a complaint whose text equals an ordinary post from hours
    earlier is stored as a copy of it, and its reposts fold into that old original, which the
    lookback never read. The copies that arrived within the lookback, with the engagement they
    brought, are a post spreading now: it opens the incident, which starts at the first copy."""
    _history(sessions)
    start = T0 + HISTORY
    with transaction(sessions) as session:
        old = add_scored_post(session, T0 + timedelta(hours=1), "negative")  # nobody reacted then
        old_id, text = old.id, old.text
    times = [start + timedelta(seconds=20 + 15 * i) for i in range(6)]
    with transaction(sessions) as session:  # a large account re-posts it word for word, others follow
        result = store_posts(session, "Acme", None, _copies_of(text, times, [3_000_000] + [80] * 5, [900] + [0] * 5),
                             start + timedelta(minutes=2))
        assert result.duplicates == 6
    clock = SimulatedClock(start + timedelta(minutes=2))
    assert [c.kind for c in detect(sessions, config, clock)] == ["opened"]
    with sessions() as s:
        incident = s.scalars(select(Incident)).one()
        opened = s.scalars(select(IncidentEvent).where(IncidentEvent.kind == "opened")).one()
        assert [f["key"] for f in opened.data["signals"]] == [f"viral:{old_id}"]
        signal = opened.data["signals"][0]
        assert signal["observed"] == 6 + 900  # what the copies brought: each is a repost, with its own
        assert signal["p_reach"] < 0.01  # the reach of the account that carries it, not the old author's
        assert "spreading" in incident.title and incident.started_at == times[0]
        assert s.get(FlaggedPost, old_id).reason.endswith("viral")


def test_an_old_complaint_copied_at_an_ordinary_pace_pages_nobody(sessions, config) -> None:
    """The no-false-alarm side: an old complaint that keeps being copied now and then, each copy
    with the engagement ordinary posts get, is read every tick and never fires."""
    _history(sessions)
    start = T0 + HISTORY
    with transaction(sessions) as session:
        old = add_scored_post(session, T0 + timedelta(hours=1), "negative")
        old_id, old_text = old.id, old.text
    times = [start + timedelta(minutes=12 * i + 3) for i in range(15)]  # five copies an hour for three hours
    with transaction(sessions) as session:
        store_posts(session, "Acme", None, _copies_of(old_text, times, [100] * 15, [i % 2 for i in range(15)]), start)
        add_background(session, start, start + timedelta(hours=3))
    clock = SimulatedClock(start)
    for minute in range(0, 181, 5):
        clock.set(start + timedelta(minutes=minute))
        assert detect(sessions, config, clock) == []
    with sessions() as s:  # it was read (the most unusual post of the lookback), and judged ordinary
        viral = [sig for sig in evaluate(s, "Acme", config.detection, 1.0, clock.now()) if sig.detector == "viral"]
    assert [(sig.post_ids, sig.fired, sig.observed) for sig in viral] == [((old_id,), False, 5 + 2)]
    assert viral[0].window_start == times[10]  # its first copy in the last hour


def test_two_active_incidents_of_a_brand_are_merged_into_the_oldest(sessions, config) -> None:
    _history(sessions)
    now = T0 + HISTORY
    with transaction(sessions) as session:
        post = add_scored_post(session, now - timedelta(minutes=3), "negative")
        older = Incident(brand="Acme", status="open", severity=1, title="a", started_at=now - timedelta(minutes=20),
                         opened_at=now - timedelta(minutes=10), updated_at=now, escalation_level=0,
                         detail={"firing": [], "last_signal_at": (now - timedelta(minutes=5)).isoformat()})
        younger = Incident(brand="Acme", status="open", severity=2, title="b", started_at=now - timedelta(minutes=30),
                           opened_at=now - timedelta(minutes=5), updated_at=now, escalation_level=0,
                           detail={"firing": [], "last_signal_at": (now - timedelta(minutes=5)).isoformat()})
        session.add_all([older, younger])
        session.flush()
        session.add(IncidentPost(incident_id=younger.id, post_id=post.id, added_at=now))
        older_id, younger_id = older.id, younger.id
    changes = detect(sessions, config, SimulatedClock(now))
    assert sorted((c.incident_id, c.kind) for c in changes) == [(older_id, "merged"), (younger_id, "merged")]
    with sessions() as s:
        kept, gone = s.get(Incident, older_id), s.get(Incident, younger_id)
        assert kept.status == "open" and kept.severity == 2 and kept.started_at == now - timedelta(minutes=30)
        assert gone.status == "closed" and gone.detail["merged_into"] == older_id
        assert s.scalar(select(IncidentPost.post_id).where(IncidentPost.incident_id == older_id)) == post.id
        assert _alerted_kinds(s) == []  # neither was alerted anywhere before, so nobody new hears of it


def test_per_brand_sensitivity_is_read_from_the_brand(sessions, config) -> None:
    _history(sessions)
    start = T0 + HISTORY
    with transaction(sessions) as session:
        for i in range(4):  # a small rise: 4 negatives in 5 minutes against ~0.5
            add_scored_post(session, start + timedelta(minutes=i, seconds=3), "negative")
    clock = SimulatedClock(start + timedelta(minutes=5))
    config.brands[0].false_alarms_per_week = 0.001
    assert detect(sessions, config, clock) == []
    config.brands[0].false_alarms_per_week = 500
    assert [c.kind for c in detect(sessions, config, clock)] == ["opened"]


def test_a_viral_first_crisis_whose_volume_rises_later_stays_one_incident(sessions, config) -> None:
    """The spreading post opens the incident and stops firing when it leaves the viral lookback;
    the complaints only surge ten minutes later. The closing window must first be free of
    firing minutes, so the surge joins the open incident as a severity rise instead of opening a
    second one (it used to close the minute the post left the lookback, and reopen)."""
    _history(sessions)
    start = T0 + HISTORY
    with transaction(sessions) as session:
        add_scored_post(session, start + timedelta(seconds=20), "negative", followers=3_000_000, reposts=900)
    surge = start + timedelta(minutes=config.detection.viral_lookback_minutes + 10)
    clock = SimulatedClock(start + timedelta(minutes=1))
    kinds: list[str] = []
    for minute in range(1, config.detection.viral_lookback_minutes + 16):
        now = start + timedelta(minutes=minute)
        if now == surge:
            with transaction(sessions) as session:
                for i in range(15):
                    add_scored_post(session, surge - timedelta(seconds=50 - 3 * i), "negative")
        clock.set(now)
        kinds += [c.kind for c in detect(sessions, config, clock)]
    assert kinds.count("opened") == 1 and "closed" not in kinds
    assert "severity_changed" in kinds  # the surge raised it
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Incident)) == 1


def test_a_launch_in_mid_crisis_does_not_close_it(sessions, config) -> None:
    """Complaints run at ten times the usual rate; twelve minutes in, a launch brings twenty-five
    times the usual other posts for an hour and a half. The activity-scaled expectation (rightly
    for firing) then explains the complaints, but the crisis is not over: the incident stays open
    through the launch, and the complaints that fire again after it join it (it used to close in
    mid-launch and reopen as a second incident)."""
    _history(sessions)
    start = T0 + HISTORY
    with transaction(sessions) as session:
        for minute in range(130):  # the complaints: 3 a minute at first, then 1 a minute
            for i in range(3 if minute < 10 else 1):
                add_scored_post(session, start + timedelta(minutes=minute, seconds=5 + 15 * i), "negative")
        for minute in range(12, 102):  # the launch: 10 positive posts a minute
            for i in range(10):
                add_scored_post(session, start + timedelta(minutes=minute, seconds=2 + 5 * i), "positive")
    clock = SimulatedClock(start)
    kinds: list[str] = []
    for minute in range(1, 126):
        clock.set(start + timedelta(minutes=minute))
        kinds += [c.kind for c in detect(sessions, config, clock)]
    assert kinds.count("opened") == 1 and "closed" not in kinds
    with sessions() as s:
        incident = s.scalars(select(Incident)).one()
        assert incident.status == "open"
