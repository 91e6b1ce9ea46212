"""The hour-of-week baseline, the tail probabilities, and the detectors on count series (no database)."""
from __future__ import annotations

import math
import random
from datetime import timedelta

import pytest
from scipy import stats as reference

from monitor.detection.backtest import Point, run_backtest
from monitor.detection.baseline import SeasonalBaseline
from monitor.detection.settings import DetectionSettings
from monitor.detection.stats import binomial_tail, negative_binomial_tail, normal_tail, poisson_sample
from monitor.detection.windows import BucketRow, window_signals
from tests.detection_helpers import T0, daily_rate

HOUR = timedelta(hours=1)


def seasonal(t) -> float:
    """Posts per hour: daily cycle peaking at 15:00, weekends at 60%."""
    return daily_rate(t, 120) * (0.6 if t.weekday() >= 5 else 1.0)


def learn(baseline: SeasonalBaseline, hours: int, rng: random.Random, start=T0, rate=seasonal) -> None:
    for h in range(hours):
        hour = start + h * HOUR
        minute_rate = rate(hour + timedelta(minutes=30)) / 60
        baseline.learn_hour(hour, {"negative": [poisson_sample(rng, minute_rate) for _ in range(60)]}, 1)


def test_tail_probabilities_match_scipy() -> None:
    for k, mean, size in [(5, 2.0, 3.0), (40, 12.5, 7.0), (1, 0.3, 0.5), (100, 60.0, 500.0)]:
        want = reference.nbinom.sf(k - 1, size, size / (size + mean))
        assert negative_binomial_tail(k, mean, size) == pytest.approx(want, rel=1e-9)
    assert negative_binomial_tail(12, 4.0, math.inf) == pytest.approx(reference.poisson.sf(11, 4.0), rel=1e-9)
    assert binomial_tail(7, 20, 0.2) == pytest.approx(reference.binom.sf(6, 20, 0.2), rel=1e-9)
    assert normal_tail(3.0) == pytest.approx(reference.norm.sf(3.0), rel=1e-12)
    assert negative_binomial_tail(0, 5.0, 2.0) == 1.0 and binomial_tail(3, 2, 0.5) == 0.0


def test_hour_of_week_baseline_learns_a_seasonal_series() -> None:
    baseline = SeasonalBaseline({"negative": 2.0}, [5, 15, 60], memory_weeks=4)
    learn(baseline, 3 * 168, random.Random(1))
    week4 = T0 + timedelta(weeks=3)
    for day, hour in [(1, 15), (1, 3), (5, 15), (6, 9)]:  # Tue peak, Tue night, Sat peak, Sun morning
        t = week4 + timedelta(days=day, hours=hour)
        want = seasonal(t + timedelta(minutes=30))
        got = baseline.expect("negative", t, t + HOUR).mean
        assert got == pytest.approx(want, rel=0.2), (t, got, want)
    tuesday = baseline.expect("negative", week4 + timedelta(days=1, hours=15), week4 + timedelta(days=1, hours=16))
    saturday = baseline.expect("negative", week4 + timedelta(days=5, hours=15), week4 + timedelta(days=5, hours=16))
    assert saturday.mean < 0.75 * tuesday.mean  # the weekend is learnt, not averaged away
    assert baseline.kappa("negative", 5) < 0.05  # Poisson data: (almost) no extra dispersion


def test_a_burst_is_down_weighted_but_a_lasting_shift_is_learnt_within_two_days() -> None:
    baseline = SeasonalBaseline({"negative": 2.0}, [5, 15, 60])
    learn(baseline, 2 * 168, random.Random(2), rate=lambda t: 30.0)
    hour = T0 + 2 * 168 * HOUR
    before = baseline.expect("negative", hour + HOUR, hour + 2 * HOUR).mean
    baseline.learn_hour(hour, {"negative": [200] * 60}, 1)  # a crisis hour: 12,000 posts against 30
    after = baseline.expect("negative", hour + HOUR, hour + 2 * HOUR).mean
    assert before < after < 1.2 * before  # learnt as "a bit high", not 400x
    # A new normal (three times the rate) is learnt within two days, not blinded for weeks.
    learn(baseline, 48, random.Random(3), start=hour + HOUR, rate=lambda t: 90.0)
    later = hour + 49 * HOUR
    assert baseline.expect("negative", later, later + HOUR).mean == pytest.approx(90, rel=0.2)


def test_cold_start_follows_the_overall_rate_and_waits_for_the_warm_up() -> None:
    settings = DetectionSettings(warmup_hours=6, detectors=["volume"])
    baseline = SeasonalBaseline({"negative": settings.cold_start_posts_per_hour}, settings.windows_minutes)
    now = T0 + 4 * HOUR
    burst = [BucketRow(now - timedelta(minutes=i + 1), 10, None) for i in range(5)]
    learn(baseline, 4, random.Random(3), rate=lambda t: 60.0)
    assert window_signals(burst, now, baseline, settings, 1.0) == []  # 4 hours learnt: still warming up
    learn(baseline, 4, random.Random(4), start=now, rate=lambda t: 60.0)
    now += 4 * HOUR
    unseen = now + timedelta(days=1, hours=5)  # an hour of week it has never seen
    assert baseline.expect("negative", unseen, unseen + HOUR).mean == pytest.approx(60, rel=0.15)
    steady = [BucketRow(now - timedelta(minutes=i + 1), 1, None) for i in range(60)]
    assert not any(s.fired for s in window_signals(steady, now, baseline, settings, 1.0))
    burst = [BucketRow(now - timedelta(minutes=i + 1), 1 + (6 if i < 5 else 0), None) for i in range(60)]
    fired = [s for s in window_signals(burst, now, baseline, settings, 1.0) if s.fired]
    assert fired and fired[0].window_minutes == 5 and fired[0].observed == 35


def _series(days: int, spike_at: int | None, seed: int) -> list[Point]:
    rng = random.Random(seed)
    points = []
    for i in range(days * 288):
        t = T0 + timedelta(minutes=5 * i)
        lam = daily_rate(t, 120) / 12
        if spike_at is not None and spike_at <= i < spike_at + 6:
            lam *= 3
        points.append(Point(t.isoformat(), t, float(poisson_sample(rng, lam))))
    return points


def test_a_clear_spike_fires_and_the_daily_peak_does_not() -> None:
    spike = 12 * 288 + 100  # day 13, 08:20
    rows = run_backtest(_series(14, spike, seed=5), DetectionSettings())
    alerts = [i for i, r in enumerate(rows) if r.alert]
    assert any(spike <= i < spike + 3 for i in alerts), alerts  # within 15 minutes of the rise
    peaks = [i for i in range(2 * 288, 14 * 288) if rows[i].point.at.hour in (14, 15, 16)]
    assert not any(rows[i].alert for i in peaks)  # the afternoon peak is expected, every day
    assert len([i for i in alerts if not spike <= i < spike + 12]) <= 2  # ~1 a week budget, 2 weeks
    assert all(0.0 <= r.anomaly_score <= 1.0 for r in rows)
    assert max(r.anomaly_score for r in rows[spike:spike + 3]) >= 0.5  # 0.5 is the alert level


def test_the_sensitivity_setting_trades_false_alarms_for_delay() -> None:
    points = _series(14, None, seed=6)
    loose = sum(r.alert for r in run_backtest(points, DetectionSettings(), false_alarms_per_week=50))
    strict = sum(r.alert for r in run_backtest(points, DetectionSettings(), false_alarms_per_week=0.1))
    assert strict <= 1 < loose
