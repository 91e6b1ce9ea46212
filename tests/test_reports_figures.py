"""Response figures on crafted incidents with known times, on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from monitor.reports.figures import format_duration, incident_figures, week_start, weekly_figures
from monitor.core.storage.db import transaction
from monitor.core.storage.schema import Incident, IncidentEvent, OutboxMessage
from tests.reports_seed import T, crafted_incident, minutes


def test_crafted_incident_figures(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        incident_id = crafted_incident(session)
    with transaction(sessions) as session:
        f = incident_figures(session, incident_id)
    assert f is not None
    assert f.started_at == T and f.detected_at == minutes(4)
    assert f.detection_delay == timedelta(minutes=4)
    # The first alert is the earliest delivered outbox row (sent 30 s after it was queued).
    assert f.first_alert_at == minutes(4.5) and f.first_alert_delivered
    assert f.time_to_detect == timedelta(minutes=4, seconds=30)
    assert f.time_to_acknowledge == timedelta(minutes=20, seconds=30)
    assert f.time_to_first_answer == timedelta(minutes=35, seconds=30)  # alice at +40m; bob's later one is not first
    assert f.time_to_resolve == timedelta(minutes=85, seconds=30)
    assert (f.escalations, f.max_level) == (1, 1)
    assert (f.posts.flagged, f.posts.answered, f.posts.dismissed, f.posts.unclaimed) == (4, 2, 1, 1)
    assert f.posts.share_answered == 0.5
    assert f.posts.by_agent == {"alice": 1, "bob": 1}  # carol dismissed: not an answer
    assert f.posts.per_agent == 1.0


def test_missing_milestones_are_none(sessions: sessionmaker[Session]) -> None:
    """Never alerted, acknowledged, answered or resolved: the response clock starts at detection."""
    with transaction(sessions) as session:
        incident = Incident(brand="acme", status="open", severity=1, title="quiet", started_at=T,
                            opened_at=minutes(3), updated_at=minutes(3), escalation_level=0)
        session.add(incident)
        session.flush()
        incident_id = incident.id
    with transaction(sessions) as session:
        f = incident_figures(session, incident_id)
        assert incident_figures(session, incident_id + 1000) is None
    assert f is not None
    assert f.first_alert_at is None and f.time_to_detect is None
    assert f.response_start == minutes(3)
    assert f.time_to_acknowledge is None and f.time_to_first_answer is None and f.time_to_resolve is None
    assert f.posts.flagged == 0 and f.posts.share_answered is None and f.posts.per_agent is None


def test_a_failed_alert_is_no_first_alert(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        incident = Incident(brand="acme", status="closed", severity=1, title="x", started_at=T, opened_at=minutes(2),
                            updated_at=minutes(2), closed_at=minutes(70), escalation_level=0)
        session.add(incident)
        session.flush()
        event = IncidentEvent(incident_id=incident.id, at=minutes(2), kind="opened", actor="detector", data={})
        session.add(event)
        session.flush()
        session.add(OutboxMessage(idempotency_key="k1", incident_id=incident.id, event_id=event.id, channel="slack",
                                  target="C1", kind="parent", payload={}, status="failed", attempts=10,
                                  created_at=minutes(2), next_attempt_at=minutes(2)))
        session.add(IncidentEvent(incident_id=incident.id, at=minutes(3), kind="alert_failed", actor=None,
                                  data={"channel": "slack", "target": "C1", "error": "invalid_auth"}))
        session.add(IncidentEvent(incident_id=incident.id, at=minutes(70), kind="closed", actor="detector", data={}))
        incident_id = incident.id
    with transaction(sessions) as session:
        f = incident_figures(session, incident_id)
    assert f is not None
    assert f.first_alert_at is None and not f.first_alert_delivered and f.time_to_detect is None
    assert f.alerts_failed == 1 and f.first_alert_failed_at == minutes(3)
    # Detection closed it: nobody resolved it, so there is no time to resolve, only a time to close (from detection).
    assert f.closed_by_itself and f.time_to_resolve is None and f.time_to_close == timedelta(minutes=68)


def test_weekly_figures_and_trend(sessions: sessionmaker[Session]) -> None:
    """Two weeks of acme: this week's incident is 10 minutes slower to acknowledge than last week's."""
    with transaction(sessions) as session:
        last_week = crafted_incident(session, "acme", shift=-timedelta(weeks=1))
        this_week = crafted_incident(session, "acme")
        crafted_incident(session, "globex", answered=False)
        session.get(Incident, this_week).acknowledged_at = minutes(35)
    with transaction(sessions) as session:
        weeks = weekly_figures(session, "acme", 2, minutes(200))
        everyone = weekly_figures(session, None, 1, minutes(200))
    assert [w.week for w in weeks] == [week_start(T) - timedelta(weeks=1), week_start(T)]
    assert [w.label for w in weeks] == ["2026-W27", "2026-W28"]
    before, now = weeks
    assert (before.incidents, now.incidents) == (1, 1)
    assert before.medians["time_to_acknowledge"] == timedelta(minutes=20, seconds=30)
    assert now.medians["time_to_acknowledge"] == timedelta(minutes=30, seconds=30)
    assert now.trend["time_to_acknowledge"] == 600.0
    assert now.trend["time_to_detect"] == 0.0
    assert now.trend["share_answered"] == 0.0 and now.trend["incidents"] == 0.0
    assert before.trend["time_to_acknowledge"] is None  # the week before it had no incident
    assert last_week != this_week
    assert [(w.brand, w.incidents, w.posts.share_answered) for w in everyone] == [("acme", 1, 0.5), ("globex", 1, 0.0)]


def test_format_duration() -> None:
    assert format_duration(timedelta(seconds=12)) == "12s"
    assert format_duration(timedelta(minutes=4, seconds=30)) == "4m 30s"
    assert format_duration(timedelta(hours=1, minutes=25, seconds=30)) == "1h 25m"
    assert format_duration(-90.0) == "-1m 30s" and format_duration(600.0) == "+10m 00s"
    assert format_duration(None) == "—"


def test_long_incident_uses_coarser_buckets_and_keeps_every_count(sessions: sessionmaker[Session]) -> None:
    from monitor.detection.settings import DetectionSettings
    from monitor.reports.timeline import MAX_POINTS, build_timeline
    from tests.reports_seed import add_buckets

    with transaction(sessions) as session:
        incident = Incident(brand="acme", status="closed", severity=1, title="long", started_at=T,
                            opened_at=minutes(5), updated_at=minutes(1440), closed_at=minutes(1440),
                            escalation_level=0)
        session.add(incident)
        add_buckets(session, "acme", minutes(-60), minutes(1500), (T, minutes(600)))
        session.flush()
        incident_id = incident.id
    with transaction(sessions) as session:
        t = build_timeline(session, incident_id, DetectionSettings(), minutes(2000))
    assert t.bucket_minutes == 5 and len(t.points) <= MAX_POINTS
    assert t.since == minutes(-30) and t.until >= minutes(1440 + 15)
    shown = (t.until - t.since).total_seconds() / 60
    assert sum(p.volume for p in t.points) == 12 * 600 + 3 * (shown - 600)  # every minute counted once
    assert t.points[10].threshold is not None and t.points[10].expected_volume > 0


def test_open_incident_is_shown_up_to_now(sessions: sessionmaker[Session]) -> None:
    from monitor.detection.settings import DetectionSettings
    from monitor.reports.timeline import build_timeline

    with transaction(sessions) as session:
        incident = Incident(brand="acme", status="open", severity=1, title="live", started_at=T, opened_at=minutes(2),
                            updated_at=minutes(2), escalation_level=0)
        session.add(incident)
        session.flush()
        incident_id = incident.id
    with transaction(sessions) as session:
        t = build_timeline(session, incident_id, DetectionSettings(), minutes(20))
    # Up to now and not beyond: a future drawn as zero would read as "complaints stopped".
    assert t.until == minutes(20) and t.bucket_minutes == 1 and len(t.points) == 50
    assert all(p.start + timedelta(minutes=1) <= minutes(20) for p in t.points)
    assert [m.kind for m in t.markers] == ["started", "detected"] and t.posts == [] and t.notes
