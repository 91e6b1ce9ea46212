"""Plain words for detection's numbers, timeline events and alert headlines (no database)."""
from __future__ import annotations

from datetime import datetime, timezone

from alerts.summary import headline, what_moved
from alerts.view import IncidentView
from monitor.core import wording

T = datetime(2026, 3, 3, 16, 23, tzinfo=timezone.utc)
VOLUME = {"key": "volume:15m", "detector": "volume", "window_minutes": 15, "observed": 12.0, "expected": 0.014,
          "p_value": 7.174e-21, "threshold": 4.459e-05, "fired": True, "window_start": "2026-03-03T16:08:00+00:00"}
VIRAL = {"key": "viral:422", "detector": "viral", "window_minutes": 60, "observed": 14.0, "expected": 1.799,
         "p_value": 2.814e-06, "threshold": 0.001, "fired": True, "post_ids": [422], "followers": 48000}
SHARE = {"detector": "share", "window_minutes": 60, "observed": 15.0, "expected": 4.441, "p_value": 1.2e-4,
         "fired": True, "volume": 25, "share": 0.6, "usual_share": 0.1776}


def test_counts_read_as_a_sentence_without_p_values_or_zero_expectations() -> None:
    assert wording.signal_sentence(VOLUME) == "12 negative posts in 15 minutes, usually almost none"
    assert wording.signal_sentence({**VOLUME, "expected": 1.2}) == "12 negative posts in 15 minutes, usually about 1.2"
    assert wording.signal_sentence({**VOLUME, "observed": 183, "expected": 41.6, "window_minutes": 60}) == \
        "183 negative posts in 1 hour, usually about 42"
    assert wording.signal_sentence({**VOLUME, "observed": 1, "expected": 0}) == \
        "1 negative post in 15 minutes, usually none"
    assert wording.signal_sentence(SHARE) == "15 of 25 posts in 1 hour were negative (60 %), usually 18 %"
    assert wording.signal_sentence(VIRAL) == ("a negative post from an account with 48,000 followers is spreading: "
                                              "14 reposts and replies (a post usually draws about 1.8)")
    for s in (VOLUME, SHARE, VIRAL):
        line = wording.signal_sentence(s)
        assert "p=" not in line and "0.0" not in line and "expected" not in line


def test_the_details_keep_the_technical_numbers() -> None:
    details = wording.signal_details(VOLUME)
    assert "volume test, 15-minute window" in details and "p = 7.17e-21" in details and "≤ 4.46e-05" in details


def test_timeline_events_are_sentences() -> None:
    sentence = wording.event_sentence
    assert sentence("post_claimed", {"post_id": 7}, "alice") == "alice claimed post 7 to answer"
    assert sentence("claimed", {"expires_at": "x"}, "alice") == "alice claimed this post to answer"
    assert sentence("post_released", {"post_id": 7, "holder": "bob"}, "ada") == "ada put post 7 back in the queue (held by bob)"
    # severity follows the count's excess, not the viral post that fired: the excess is the reason given
    assert sentence("severity_changed", {"from": 1, "to": 2, "excess": 11.836, "signals": [VIRAL]}) == \
        "Severity up: SEV-1 to SEV-2: about 12 negative posts more than usual"
    assert sentence("closed", {"quiet_minutes": 60, "last_signal_at": "x"}) == \
        "Closed by itself: no new signal for 1 hour"
    assert sentence("escalated", {"level": 1, "after_minutes": 10}) == \
        "Escalated to level 2: not acknowledged after 10 minutes"
    assert sentence("opened", {"severity": 1, "signals": [VOLUME]}).startswith("Incident opened at SEV-1: 12 negative")
    assert "p = " in wording.event_details("opened", {"signals": [VOLUME]})
    assert sentence("weird_thing", {"n": 3}) == "Update: weird thing (n 3)"
    # escape applies to every value from the event
    assert sentence("dismissed", {"reason": "<b>"}, "<i>", escape=lambda v: v.replace("<", "&lt;")) == \
        "&lt;i> dismissed this post: &lt;b>"


def test_the_headline_signal_follows_the_count_that_raised_the_severity() -> None:
    """SEV-2 came from the count test's excess, not from the viral post that opened SEV-1."""
    unfired_volume = {**VOLUME, "observed": 12.0, "expected": 0.2, "fired": False, "window_minutes": 60}
    shown = wording.headline_signals([unfired_volume, VIRAL])
    assert shown == [unfired_volume, VIRAL]
    assert wording.headline_signals([{**unfired_volume, "observed": 3.0, "expected": 0.9}, VIRAL]) == [VIRAL]


def _view(**kw: object) -> IncidentView:
    base = dict(id=1, brand="Acme", severity=3, status="open", title="Acme: negative posts are surging", opened_at=T,
                started_at=T, acknowledged_by=None, acknowledged_at=None, snoozed_until=None, escalation_level=0,
                metric="negative posts", observed=None, expected=None, window_minutes=None, probability=None)
    return IncidentView(**{**base, **kw})  # type: ignore[arg-type]


def test_alert_headlines_name_the_brand_once_and_a_closing_alert_reads_as_closing() -> None:
    assert headline(_view()) == "SEV-3 Acme: negative posts are surging"
    assert headline(_view(title="Other: x")) == "SEV-3 Acme: Other: x"
    peak = {**VOLUME, "observed": 183.0, "expected": 1.311, "window_minutes": 60}
    closing = what_moved(_view(status="closed", quiet_minutes=60, peak=peak))
    assert closing == ("Closed by itself after 1 hour without a new signal; "
                       "at its peak, 183 negative posts in 1 hour, usually about 1.3")
    live = what_moved(_view(signals=[VOLUME]))
    assert live.startswith("12 negative posts in 15 minutes, usually almost none;") and "odds" in live
    weak = {**VOLUME, "fired": False, "p_value": 0.1}
    assert what_moved(_view(signals=[weak, VIRAL])).startswith("12 negative posts") and \
        "1 in 355,366 odds" in what_moved(_view(signals=[weak, VIRAL]))  # the odds are the fired test's
