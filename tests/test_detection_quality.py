"""Detection on realistic synthetic streams: over-dispersed, heavy-tailed, trending, shifting.

Each test is a backtest of a few weeks of 5-minute buckets (or the daemon's 1-minute ones), a
second or two each: the false alarm budget must hold on background alone, bursts must be caught
once, the score must rank.
"""
from __future__ import annotations

import json
import math
import random
from datetime import timedelta

import numpy as np
import pytest

from monitor.detection import calibration, windows
from monitor.detection.backtest import Point, run_backtest
from monitor.detection.baseline import SeasonalBaseline
from monitor.detection.settings import DetectionSettings
from monitor.detection.stats import anomaly_score
from monitor.detection.viral import RecentPost, check_viral_posts, post_alpha
from monitor.detection.windows import alert_level, bucket_alpha, fold_hour, hour_tests, tail_state
from tests.detection_helpers import T0, daily_rate

BUCKETS_PER_DAY = 288
WARM_DAYS = 3  # NAB's probation is 2.6 days: the budget is judged after it


def rates(days: int, peak_per_hour: float = 60.0, trend_per_week: float = 0.0, bucket_minutes: int = 5) -> np.ndarray:
    """Expected count per bucket (5 minutes, or the daemon's 1): daily cycle, quieter weekends, optional trend."""
    per_day = 1440 // bucket_minutes
    out = np.empty(days * per_day)
    for i in range(len(out)):
        t = T0 + timedelta(minutes=bucket_minutes * i)
        week = 0.7 if t.weekday() >= 5 else 1.0
        out[i] = daily_rate(t, peak_per_hour) / (60 // bucket_minutes) * week * (1 + trend_per_week) ** (i / (7 * per_day))
    return out


def noisy(rate: np.ndarray, seed: int, kind: str, bucket_minutes: int = 5) -> np.ndarray:
    """Counts: Poisson, or with each hour's rate scaled by gamma (NB) or lognormal (heavy) noise."""
    rng = np.random.default_rng(seed)
    per_hour = 60 // bucket_minutes
    hours = len(rate) // per_hour
    if kind == "poisson":
        scale = np.ones(hours)
    elif kind == "gamma":  # make_replay --dispersion 3: variance 1/3
        scale = rng.gamma(3.0, 1 / 3.0, hours)
    elif kind == "lognormal":  # heavier than any negative binomial: log-sd 0.7
        scale = rng.lognormal(-0.7 ** 2 / 2, 0.7, hours)
    else:
        raise ValueError(kind)
    return rng.poisson(rate * np.repeat(scale, per_hour)).astype(float)


def points_of(counts: np.ndarray, bucket_minutes: int = 5) -> list[Point]:
    out = []
    for i, c in enumerate(counts):
        t = T0 + timedelta(minutes=bucket_minutes * i)
        out.append(Point(t.isoformat(), t, float(c)))
    return out


def alerts_after_warm_up(rows, bucket_minutes: int = 5) -> int:
    return sum(r.alert for r in rows[WARM_DAYS * 1440 // bucket_minutes:])


@pytest.mark.parametrize("kind", ["poisson", "gamma", "lognormal"])
def test_false_alarms_on_a_long_background_stay_within_the_budget(kind: str) -> None:
    days = 8 * 7
    rows = run_backtest(points_of(noisy(rates(days), seed=11, kind=kind)), DetectionSettings())
    weeks = (days - WARM_DAYS) / 7
    # The budget is an expected rate: allow the count two standard deviations of chance.
    assert alerts_after_warm_up(rows) <= weeks + 2 * math.sqrt(weeks)  # openings and severity rises alike


def test_on_minute_buckets_the_budget_is_spent_not_only_held() -> None:
    """A minute-bucket stream seldom reaches the alert level, so θ cannot be learnt there; if the
    blank state counted each bucket beyond it as its own alert, a burst that lifts the 5-minute
    window for five buckets would count five times and the budget would go a fifth spent (later
    alerts on real surges). About the budget's alerts, and not more."""
    days = 8 * 7
    counts = noisy(rates(days, bucket_minutes=1), seed=11, kind="poisson", bucket_minutes=1)
    rows = run_backtest(points_of(counts, bucket_minutes=1), DetectionSettings())
    weeks = (days - WARM_DAYS) / 7
    alerts = alerts_after_warm_up(rows, bucket_minutes=1)
    assert weeks / 2 <= alerts <= weeks + 2 * math.sqrt(weeks)


@pytest.mark.parametrize("seed", [0, 1])
def test_a_sustained_surge_on_an_overdispersed_background_is_caught_by_the_likelihood_ratio_test(
        seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Six hours at 2.5 times the usual rate, on hours whose rate already varies by ±60 %: no single
    window finds it extreme against the learnt dispersion, the sum over its start points does."""
    expected = rates(14)
    counts = noisy(expected, seed, "gamma")
    start = 10 * BUCKETS_PER_DAY + 12 * 12  # day 10, noon
    counts[start:start + 72] += np.random.default_rng(100 + seed).poisson(expected[start:start + 72] * 1.5)

    def first_alert() -> int | None:
        rows = run_backtest(points_of(counts), DetectionSettings())
        return next((i - start for i in range(start, start + 96) if rows[i].alert), None)

    caught = first_alert()
    assert caught is not None and caught <= 60  # within five hours
    monkeypatch.setattr(windows, "CUSUM_RATE_RATIO", 1.0)  # log ρ = 0: the test adds nothing
    assert first_alert() is None  # the windows alone miss it


def test_a_trending_series_is_followed_and_stays_within_the_budget() -> None:
    days = 6 * 7
    expected = rates(days, trend_per_week=0.15)
    rows = run_backtest(points_of(noisy(expected, seed=12, kind="gamma")), DetectionSettings())
    weeks = (days - WARM_DAYS) / 7
    assert alerts_after_warm_up(rows) <= weeks + 2 * math.sqrt(weeks)


def test_a_level_shift_is_learnt_within_two_days_as_one_incident() -> None:
    days = 5 * 7
    expected = rates(days)
    shift = 3 * 7 * BUCKETS_PER_DAY
    expected[shift:] *= 2.5  # a new normal: two and a half times the traffic, for good
    rows = run_backtest(points_of(noisy(expected, seed=13, kind="poisson")), DetectionSettings())
    after = rows[shift + 2 * BUCKETS_PER_DAY:]
    assert sum(r.alert for r in after) <= 1  # two days on, the new level is ordinary
    assert len({r.incident for r in rows[shift:shift + 2 * BUCKETS_PER_DAY] if r.incident}) <= 1


def test_the_baseline_learns_an_overdispersed_series() -> None:
    settings = DetectionSettings(detectors=["volume"])
    days = 4 * 7
    expected = rates(days)
    counts = noisy(expected, seed=14, kind="gamma")
    baseline = SeasonalBaseline({"negative": 2.0}, settings.windows_minutes)
    predicted, truth = [], []
    for h in range(days * 24):
        hour = T0 + timedelta(hours=h)
        if h >= 3 * 7 * 24:
            predicted.append(baseline.rate("negative", hour) * 60)
            truth.append(expected[h * 12:(h + 1) * 12].sum())
        fold_hour(baseline, hour, {"negative": counts[h * 12:(h + 1) * 12].tolist()}, 5, settings)
    ratio = np.array(predicted) / np.array(truth)
    assert 0.85 < float(np.exp(np.mean(np.log(ratio)))) < 1.15  # level: no bias from the bursts
    assert float(np.std(np.log(ratio))) < 0.25  # shape: hourly noise of ±58% leaves each hour within ~25%
    # Gamma(3) noise on each hour: extra variance 1/3 in every window within the hour.
    assert 0.15 < baseline.kappa("negative", 60) < 0.7
    assert 0.15 < baseline.kappa("negative", 5) < 0.7
    # Three independent hours average out: a three-hour window varies less than an hour does.
    assert 0.03 < baseline.kappa("negative", 180) < 0.6 * baseline.kappa("negative", 60)


def test_a_burst_with_a_dip_stays_one_incident_and_closes_when_back_to_normal() -> None:
    days = 14
    expected = rates(days)
    start = 10 * BUCKETS_PER_DAY + 12 * 10  # day 10, 10:00
    burst = np.full(36, 4.0)  # three hours at four times the usual rate...
    burst[15:21] = 1.6  # ...with a half-hour lull in the middle
    expected[start:start + 36] *= burst
    rows = run_backtest(points_of(noisy(expected, seed=15, kind="poisson")), DetectionSettings())
    incidents = {r.incident for r in rows[start:start + 36] if r.incident}
    assert len(incidents) == 1
    (number,) = incidents
    open_until = max(i for i, r in enumerate(rows) if r.incident == number)
    assert open_until < start + 36 + 24  # closed within two hours of the burst's end
    assert any(r.alert for r in rows[start:start + 3])  # caught within 15 minutes


def test_the_anomaly_score_is_monotone_in_the_evidence_and_half_at_the_alert_level() -> None:
    settings = DetectionSettings(detectors=["volume"])
    counts = noisy(rates(14), seed=16, kind="gamma")
    baseline = SeasonalBaseline({"negative": 2.0}, settings.windows_minutes)
    for h in range(14 * 24):
        fold_hour(baseline, T0 + timedelta(hours=h), {"negative": counts[h * 12:(h + 1) * 12].tolist()}, 5, settings)
    hour = T0 + timedelta(days=14, hours=15)
    alpha = bucket_alpha(settings, 1.0, "volume", 5)
    scores = []
    for last in range(0, 400, 4):
        tests = hour_tests(baseline, hour, {"negative": [5.0] * 11 + [float(last)]}, 5, settings)
        p = calibration.tail_probability(tail_state(baseline, "volume"), tests.surprise["volume"][-1:])
        scores.append((float(anomaly_score(p, alpha)[0]), bool(p[0] <= alpha)))
    values = [s for s, _ in scores]
    assert all(b >= a for a, b in zip(values, values[1:]))  # never falls as the count grows
    assert values[-1] > values[-2] > 0.5  # and still ranks far above the alert level
    assert all((s >= 0.5) == fired for s, fired in scores)


def test_cold_start_on_a_busy_brand_is_quiet_and_then_catches_a_burst() -> None:
    days = 7
    expected = rates(days, peak_per_hour=3000)  # 1,500 times the cold-start prior
    spike = 3 * BUCKETS_PER_DAY + 12 * 9  # Thursday: its first weekend would still surprise it
    expected[spike:spike + 6] *= 3
    rows = run_backtest(points_of(noisy(expected, seed=17, kind="poisson")), DetectionSettings())
    assert sum(r.alert for r in rows[:spike]) <= 1
    assert any(r.alert for r in rows[spike:spike + 3])


def test_the_calibration_learns_a_day_before_volume_and_share_alert() -> None:
    """The calibration starts once a whole day is learnt, the alerts a day later (`warmup_hours`):
    the first hour that can alert is judged against a day of the brand's own surprises, not the
    model's prior, which on a bursty stream alarmed on the second day."""
    settings = DetectionSettings(detectors=["volume"])
    baseline = SeasonalBaseline({"negative": 2.0}, settings.windows_minutes)
    counts = noisy(rates(3), seed=19, kind="gamma")
    rows = [windows.BucketRow(T0 + timedelta(minutes=5 * i), int(c), None) for i, c in enumerate(counts)]
    for h in range(settings.warmup_hours + 1):
        now = T0 + timedelta(hours=h)
        testing = bool(windows.window_signals(rows[:h * 12], now, baseline, settings, 1.0, 5))
        assert testing == (h >= settings.warmup_hours)  # the tests run (and may fire) from then on
        assert ("volume" in baseline.calibration) == (h > 24)  # learnt from the second day on
        fold_hour(baseline, now, {"negative": counts[h * 12:(h + 1) * 12].tolist()}, 5, settings)


def test_backtest_and_the_stored_state_are_deterministic() -> None:
    points = points_of(noisy(rates(10), seed=18, kind="lognormal"))
    first, second = run_backtest(points, DetectionSettings()), run_backtest(points, DetectionSettings())
    assert [(r.anomaly_score, r.alert) for r in first] == [(r.anomaly_score, r.alert) for r in second]
    settings = DetectionSettings(detectors=["volume"])
    baseline = SeasonalBaseline({"negative": 2.0}, settings.windows_minutes)
    counts = [float(p.value) for p in points]
    for h in range(5 * 24):
        fold_hour(baseline, T0 + timedelta(hours=h), {"negative": counts[h * 12:(h + 1) * 12]}, 5, settings)
    stored = json.loads(json.dumps(baseline.state()))  # as the database keeps it
    again = SeasonalBaseline({"negative": 2.0}, settings.windows_minutes, state=stored)
    hour = T0 + timedelta(hours=5 * 24)
    window = {"negative": counts[5 * 24 * 12:5 * 24 * 12 + 12]}
    assert np.array_equal(hour_tests(baseline, hour, window, 5, settings).surprise["volume"],
                          hour_tests(again, hour, window, 5, settings).surprise["volume"])


def test_the_daemon_and_the_backtest_see_the_same_surprise_every_minute() -> None:
    """The daemon tests a brand minute by minute from its stored buckets (`window_signals`), the
    backtest and the calibration a whole hour at once (`hour_tests`): the same evidence, or the
    calibration would learn a tail the live test never reaches."""
    settings = DetectionSettings(detectors=["volume", "share"])
    baseline = SeasonalBaseline({"negative": 2.0, "volume": 10.0}, settings.windows_minutes)
    volume = noisy(rates(4, bucket_minutes=1), seed=5, kind="gamma", bucket_minutes=1)
    rng = np.random.default_rng(6)
    negative = rng.binomial(volume.astype(int), 0.2).astype(float)
    tested = 3 * 24 + 15  # an afternoon on the fourth day, with a surge of complaints in it
    negative[tested * 60 + 20:tested * 60 + 50] += rng.poisson(0.6, 30)
    volume = np.maximum(volume, negative)

    def hour_counts(h: int) -> dict[str, list[float]]:
        return {"negative": negative[h * 60:(h + 1) * 60].tolist(), "volume": volume[h * 60:(h + 1) * 60].tolist()}

    for h in range(tested):
        fold_hour(baseline, T0 + timedelta(hours=h), hour_counts(h), 1, settings)
    hour = T0 + timedelta(hours=tested)
    whole_hour = hour_tests(baseline, hour, hour_counts(tested), 1, settings)
    rows = [windows.BucketRow(T0 + timedelta(minutes=i), int(negative[i]), int(volume[i]))
            for i in range((tested + 1) * 60)]
    for k in range(60):
        live = windows.window_signals(rows[:tested * 60 + k + 1], hour + timedelta(minutes=k + 1), baseline,
                                      settings, 1.0, 1)
        for detector in ("volume", "share"):
            seen = [-math.log(s.extra["model_p"]) for s in live
                    if s.detector == detector and s.observed >= settings.min_negative_posts]
            # model_p is stored to four significant digits
            assert max(seen, default=0.0) == pytest.approx(whole_hour.surprise[detector][k], rel=1e-3, abs=1e-3)
    assert whole_hour.surprise["volume"].max() > 5.0  # the surge is in it: the comparison covers the tail


def test_a_heavy_tailed_audience_does_not_page_but_a_spreading_post_does() -> None:
    rng = random.Random(19)
    baseline = SeasonalBaseline({"negative": 10.0}, [5, 15, 60])

    def ordinary() -> tuple[int, int]:
        followers = int(rng.lognormvariate(5, 3.0))  # audiences from a handful to celebrities
        engagement = int(rng.paretovariate(1.5) * 2) - 2  # most posts nothing, a few dozens
        return followers, engagement

    negatives_per_week = 7 * 24 * 10
    for h in range(7 * 24):
        baseline.learn_hour(T0 + timedelta(hours=h), {"negative": [0] * 60}, 1, [ordinary() for _ in range(30)])
    alpha = post_alpha(1.0, 1 / 3, negatives_per_week)
    now = T0 + timedelta(days=7, minutes=30)
    fresh = [RecentPost(i, now - timedelta(minutes=rng.uniform(0, 60)), *ordinary()) for i in range(20000)]
    fired = sum(s.fired for s in check_viral_posts(fresh, baseline.posts, alpha, 60, now))
    # 20,000 ordinary negative posts are about 12 weeks of this brand: at most 1/3 alarm a week.
    assert fired <= 12 / 3 + 2
    spreading = RecentPost(0, now - timedelta(minutes=20), 800, 5000)
    assert check_viral_posts([spreading], baseline.posts, alpha, 60, now)[0].fired
    celebrity = RecentPost(1, now - timedelta(minutes=20), 50_000_000, 1)
    assert not check_viral_posts([celebrity], baseline.posts, alpha, 60, now)[0].fired


def test_the_budget_scales_the_threshold() -> None:
    settings = DetectionSettings()
    assert bucket_alpha(settings, 2.0, "volume", 5) == pytest.approx(2 * bucket_alpha(settings, 1.0, "volume", 5))
    assert bucket_alpha(settings, 1.0, "volume", 1) == pytest.approx(1 / 3 / 10080)
    assert math.isclose(float(anomaly_score(bucket_alpha(settings, 1.0, "volume", 5), bucket_alpha(settings, 1.0, "volume", 5))), 0.5)


def test_the_extremal_index_counts_bursts_not_buckets() -> None:
    state = calibration.blank_tail()
    assert calibration.extremal_index(state) == 1.0  # before data: every bucket its own alert
    hour = [0.0] * 12
    for h in range(4 * 7 * 24):
        surprises = list(hour)
        if h % 24 == 10:  # one burst a day, five buckets beyond the level in a row
            surprises[3:8] = [30.0] * 5
        calibration.tail_update(state, surprises, 1.0 - 1.0 / (4 * 168), level=20.0, run=12)
    assert 0.2 < calibration.extremal_index(state) < 0.25  # five buckets a burst, and the prior's pull to 1
    settings = DetectionSettings(detectors=["volume"])
    baseline = SeasonalBaseline({"negative": 2.0}, settings.windows_minutes)
    baseline.calibration["volume"] = state
    assert alert_level(baseline, settings, 1.0, "volume", 5) == pytest.approx(
        bucket_alpha(settings, 1.0, "volume", 5) / calibration.extremal_index(state))
    # Nothing seen yet: θ's prior is one cluster per 5-minute window, one 5-minute bucket or five 1-minute ones.
    blank = SeasonalBaseline({"negative": 2.0}, settings.windows_minutes)
    for minutes, theta in ((5, 1.0), (1, 0.2)):
        assert alert_level(blank, settings, 1.0, "volume", minutes) == pytest.approx(
            bucket_alpha(settings, 1.0, "volume", minutes) / theta)


def test_the_tail_is_fitted_above_the_brands_own_top_percent_not_a_fixed_threshold() -> None:
    """A statistic whose every value lies beyond the model's p = 0.01 (the likelihood-ratio test on
    a busy series runs to hundreds): the tail must be fitted above the top 1 % of the brand's own
    values, not to the whole body, or the alert level is extrapolated far off."""
    rng = np.random.default_rng(31)
    state = calibration.blank_tail()
    decay = 1.0 - 1.0 / (4 * 168)
    for _ in range(8 * 7 * 24):  # eight weeks of hours: 20 plus an exponential of mean 10
        calibration.tail_update(state, (20.0 + rng.exponential(10.0, 12)).tolist(), decay)
    for p in (0.5, 0.1, 1e-3, 1e-4):  # the body too: below U it is the brand's own histogram
        truth = 20.0 + 10.0 * math.log(1.0 / p)
        assert calibration.surprise_for(state, p) == pytest.approx(truth, rel=0.1)
        assert 0.5 * p < float(calibration.tail_probability(state, truth)) < 2.0 * p
    assert float(calibration.tail_probability(state, 5.0)) > 0.95  # all but the fading prior is above 20


def test_the_blank_tail_is_the_models_own_and_an_older_state_keeps_its_tail() -> None:
    blank = calibration.blank_tail()
    for s in (1.0, 3.0, 4.6, 8.0, 15.0):  # before data the model's p-values are trusted: P(S >= s) = e^-s
        assert float(calibration.tail_probability(blank, s)) == pytest.approx(math.exp(-s), rel=1e-6)
    older = [2000.0, 40.0, 80.0, 240.0, 4.0, 4.0, 1e9]  # fixed U, ζ = 0.02, mean excess 2 (a saved state)
    before = [calibration.surprise_for(older, p) for p in (1e-3, 1e-4)]
    calibration.tail_update(older, [], 1.0)  # no new data: the same tail, now as a histogram
    after = [calibration.surprise_for(older, p) for p in (1e-3, 1e-4)]
    assert after == pytest.approx(before, rel=0.1)
