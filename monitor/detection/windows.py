"""Sliding-window tests shared by the daemon (buckets from the database) and backtests.

A window of w minutes at time `now` covers the buckets starting in [now - w, now), the current
partial bucket included, and its expectation covers exactly that span, so a tick between bucket
boundaries compares like with like.

Each detector's surprise at a bucket is -ln of its smallest model p-value over the windows; its
calibrated tail probability (`calibration`) is compared with the per-bucket level that spends the
detector's share of the weekly false-alarm budget: alpha = budget · share / buckets per week / θ.
Every alert needs at least one firing bucket, and firing buckets come in bursts: θ, the extremal
index (clusters per alert-level exceedance, `calibration.extremal_index`), turns the budget in
alerts into a level per bucket. The windows slide a bucket at a time, so a burst of posts lifts
the shortest one for up to that window's length in buckets, and the longer windows and the
likelihood-ratio test stay up longer still: θ's prior is one cluster per shortest window (1 on
5-minute series, 1/5 on the daemon's minutes). Counting each minute as its own alert left about
four fifths of the budget unspent (0.1-0.3 false alarms a week on the crisis replays) and every
real surge was caught later for it. θ learnt from the brand's own bursts spends what longer bursts
would otherwise leave unused (about half of the budget on the NAB series).

Slow, sustained surges: besides the fixed windows, the volume detector runs a likelihood-ratio
test over every start point within the longest window (a Poisson CUSUM restarted at the window's
start; Page 1954, Lorden 1971): S = max over k of Σ from k of (x ln ρ - (ρ - 1) μ), the
log-likelihood ratio of a rate ρ = `CUSUM_RATE_RATIO` times the expectation against the
expectation itself. Under the model P(S >= s) <= e^-s (Wald), so S is a surprise like the
windows' -ln p, and it joins their maximum: the same calibration, θ and budget judge it. It adds
up a rise bucket by bucket, so a surge that no single window finds extreme is still caught.

`hour_tests` runs the same tests over a whole hour of buckets with numpy: the backtest scores
with it, and `fold_hour` feeds the hour's surprises to the calibration before the baseline learns
the hour (so the calibration only ever sees what the detector saw, in real time).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from monitor.detection import calibration
from monitor.detection.baseline import SeasonalBaseline
from monitor.detection.lifecycle import closing_window
from monitor.detection.settings import DetectionSettings
from monitor.detection.share import check_negative_share, design_effect
from monitor.detection.signals import Signal
from monitor.detection.stats import (
    MINUTES_PER_WEEK, binomial_tail_array, negative_binomial_tail_array, surprise, threshold_count,
)
from monitor.detection.volume import activity_scaled_mean, check_negative_volume

WINDOW_DETECTORS = ("volume", "share")
CLUSTER_GAP_MINUTES = 60  # alert-level exceedances closer than this are one burst (one cluster)
CUSUM_RATE_RATIO = 2.0  # the surge the likelihood-ratio test looks for: a doubling of the rate
CUSUM = "cusum"  # Signal.extra["test"] of the likelihood-ratio test


@dataclass(frozen=True)
class BucketRow:
    start: datetime
    negative: int
    volume: int | None  # None for a plain count series


def detector_share(settings: DetectionSettings, detector: str) -> float:
    """Each enabled detector spends an equal share of the weekly false-alarm budget."""
    return 1.0 / len(settings.detectors) if detector in settings.detectors else 0.0


def bucket_alpha(settings: DetectionSettings, false_alarms_per_week: float, detector: str,
                 bucket_minutes: int = 1) -> float:
    """The calibrated per-bucket level a detector fires at (see the module docstring)."""
    buckets_per_week = MINUTES_PER_WEEK / bucket_minutes
    return min(0.5, false_alarms_per_week * detector_share(settings, detector) / buckets_per_week)


def prior_theta(settings: DetectionSettings, bucket_minutes: int) -> float:
    """θ before the brand's own alert-level exceedances say otherwise: a burst lifts the shortest
    window for up to that window's length in buckets (module docstring)."""
    return min(1.0, max(calibration.MIN_THETA, bucket_minutes / min(settings.windows_minutes)))


def tail_state(baseline: SeasonalBaseline, detector: str) -> list[float]:
    return baseline.calibration.get(detector) or calibration.blank_tail()


def alert_level(baseline: SeasonalBaseline, settings: DetectionSettings, false_alarms_per_week: float,
                detector: str, bucket_minutes: int = 1) -> float:
    """The calibrated per-bucket probability a detector fires at: the budget's bucket level over
    the extremal index, since a burst's exceedances come about 1/θ buckets at a time and open
    one incident. How old the recent history is lies in θ's own decayed counts."""
    state = baseline.calibration.get(detector)
    theta = calibration.extremal_index(state) if state else prior_theta(settings, bucket_minutes)
    return min(0.5, bucket_alpha(settings, false_alarms_per_week, detector, bucket_minutes) / theta)


def model_alpha(baseline: SeasonalBaseline, settings: DetectionSettings, false_alarms_per_week: float,
                detector: str, bucket_minutes: int = 1) -> float:
    """The model p-value that is the alert level now (what the calibration has made of alpha)."""
    level = calibration.surprise_for(tail_state(baseline, detector),
                                     alert_level(baseline, settings, false_alarms_per_week, detector, bucket_minutes))
    return math.exp(-level)


def _calibrate(signal: Signal, baseline: SeasonalBaseline, alpha: float, min_posts: int) -> Signal:
    model_p = signal.p_value
    state = tail_state(baseline, signal.detector)
    p_cal = float(calibration.tail_probability(state, surprise(model_p)))
    extra = dict(signal.extra)
    if signal.detector == "volume" and extra.get("test") != CUSUM:  # the count that fires this window: severity counts beyond it
        level = math.exp(-calibration.surprise_for(state, alpha))
        inverse = baseline.inverse_size("negative", signal.window_minutes)
        extra["threshold_count"] = float(threshold_count(level, signal.expected, inverse, min_posts))
    return Signal(
        detector=signal.detector, window_minutes=signal.window_minutes, window_start=signal.window_start,
        observed=signal.observed, expected=signal.expected, p_value=p_cal, threshold=alpha,
        fired=signal.observed >= min_posts and p_cal <= alpha, post_ids=signal.post_ids,
        extra={**extra, "model_p": float(f"{model_p:.4g}")},
    )


def window_signals(
    rows: Sequence[BucketRow], now: datetime, baseline: SeasonalBaseline, settings: DetectionSettings,
    false_alarms_per_week: float, bucket_minutes: int = 1,
) -> list[Signal]:
    """Volume (and, when volumes are known, share) signals for every configured window."""
    signals: list[Signal] = []
    if baseline.hours < settings.warmup_hours:
        return signals
    windows = settings.windows_minutes
    starts = [now - timedelta(minutes=w) for w in windows]
    negative = [0] * len(windows)
    volume = [0] * len(windows)
    has_volume = True
    for row in rows:  # one pass: each row adds to every window that holds it
        if row.start >= now:
            continue
        if row.volume is None:
            has_volume = False
        for i, start in enumerate(starts):
            if row.start >= start:
                negative[i] += row.negative
                if row.volume is not None:
                    volume[i] += row.volume
    with_share = "share" in settings.detectors and has_volume and "volume" in baseline.metrics
    for i, w in enumerate(windows):
        window_start = _first_bucket_start(starts[i], now, bucket_minutes)
        if "volume" in settings.detectors:
            alpha = alert_level(baseline, settings, false_alarms_per_week, "volume", bucket_minutes)
            signals.append(_calibrate(check_negative_volume(
                baseline, window_start, now, w, negative[i], volume[i] if has_volume else None, 1.0,
                settings.min_negative_posts), baseline, alpha, settings.min_negative_posts))
        if with_share:
            alpha = alert_level(baseline, settings, false_alarms_per_week, "share", bucket_minutes)
            signals.append(_calibrate(check_negative_share(
                baseline, window_start, now, w, negative[i], volume[i], 1.0, settings.min_negative_posts,
                settings.share_concentration), baseline, alpha, settings.min_negative_posts))
    if "volume" in settings.detectors:
        alpha = alert_level(baseline, settings, false_alarms_per_week, "volume", bucket_minutes)
        signals.append(_calibrate(_cusum_signal(rows, now, baseline, max(windows), bucket_minutes, has_volume),
                                  baseline, alpha, settings.min_negative_posts))
    return signals


def _cusum_signal(rows: Sequence[BucketRow], now: datetime, baseline: SeasonalBaseline, longest: int,
                  bucket_minutes: int, has_volume: bool) -> Signal:
    """The likelihood-ratio test over the start points within the longest window (module docstring)."""
    first = _first_bucket_start(now - timedelta(minutes=longest), now, bucket_minutes)
    step = timedelta(minutes=bucket_minutes)
    negative: dict[datetime, float] = {}
    other = 0.0
    for row in rows:
        if first <= row.start < now:
            negative[row.start] = negative.get(row.start, 0.0) + row.negative
            if row.volume is not None:
                other += row.volume - row.negative
    starts, counts, means = [], [], []
    t = first
    while t < now:
        starts.append(t)
        counts.append(negative.get(t, 0.0))
        means.append(baseline.rate("negative", t.replace(minute=0, second=0, microsecond=0))
                     * min(bucket_minutes, (now - t).total_seconds() / 60.0))
        t += step
    mean = np.array(means)
    if has_volume and "volume" in baseline.metrics:
        other_expected = baseline.estimate("volume", first, now).mean - float(mean.sum())
        mean = mean * _activity_factor(other, other_expected)
    stat, k = cusum(np.array(counts), mean)
    return Signal(
        detector="volume", window_minutes=longest, window_start=starts[k] if k < len(starts) else now,
        observed=float(sum(counts[k:])), expected=float(mean[k:].sum()), p_value=math.exp(-stat),
        threshold=1.0, fired=False, extra={"test": CUSUM},
    )


def _activity_factor(other_observed: float | np.ndarray, other_expected: float | np.ndarray) -> np.ndarray:
    """How much busier than usual the non-negative posts are (at least 1: `activity_scaled_mean`)."""
    return activity_scaled_mean(1.0, other_observed, other_expected)


def cusum(counts: np.ndarray, means: np.ndarray) -> tuple[float, int]:
    """max(0, max over k of Σ_{i >= k} x_i ln ρ - (ρ - 1) μ_i) and the k that attains it (len: none)."""
    z = counts * math.log(CUSUM_RATE_RATIO) - (CUSUM_RATE_RATIO - 1.0) * means
    tails = np.cumsum(z[::-1])[::-1]  # tails[k] = Σ_{i >= k} z_i
    if len(tails) == 0 or tails.max() <= 0.0:
        return 0.0, len(counts)
    k = int(np.argmax(tails))
    return float(tails[k]), k


def _first_bucket_start(start: datetime, now: datetime, bucket_minutes: int) -> datetime:
    """Minute buckets: the first minute at or after `start`. Coarser series are evaluated on
    their own grid (now - w is a bucket start), so `start` is one already."""
    if bucket_minutes > 1:
        return start
    floor = start.replace(second=0, microsecond=0)
    return min(floor if floor == start else floor + timedelta(minutes=1), now)


# -- the same tests over a whole hour of buckets ------------------------------------------------


@dataclass(frozen=True)
class HourTests:
    """Per bucket of one hour: each window detector's surprise, and the volume test's excess."""

    surprise: dict[str, np.ndarray]
    excess: np.ndarray  # the largest excess (observed - expected) of negatives over the windows
    widest_excess: np.ndarray  # the closing window's excess (`lifecycle`): <= 0 means back to the baseline
    volume_windows: list[tuple[np.ndarray, np.ndarray, float]]  # (observed, mean, 1/size) per window
    # Each detector's surprise over the windows up to the closing window only: while these fire,
    # the burst is still inside the closing window (`lifecycle.back_to_baseline`).
    short_surprise: dict[str, np.ndarray]

    def beyond_threshold(self, model_p: float, min_posts: int) -> np.ndarray:
        """Each bucket's largest count of negatives beyond what would just fire its window: the
        excess the background cannot explain, which severity is measured in."""
        out = np.zeros(len(self.excess))
        for i, (obs, mean, inverse) in enumerate(self.volume_windows):
            beyond = obs - threshold_count(model_p, mean, inverse, min_posts)
            out = beyond if i == 0 else np.maximum(out, beyond)
        return out


def _means(baseline: SeasonalBaseline, metric: str, hour: datetime, before: int, per_hour: int,
           bucket_minutes: int) -> np.ndarray:
    """Expected count of each bucket: `before` buckets preceding `hour` (whole hours of them),
    then the hour's own."""
    out = np.empty(before + per_hour)
    out[before:] = baseline.rate(metric, hour) * bucket_minutes
    per = max(1, 60 // bucket_minutes)
    back = hour
    i = before
    while i > 0:  # whole hours back; only the few hours the longest window reaches
        back -= timedelta(hours=1)
        lo = max(0, i - per)
        out[lo:i] = baseline.rate(metric, back) * bucket_minutes
        i = lo
    return out


def hour_tests(baseline: SeasonalBaseline, hour: datetime, counts: Mapping[str, Sequence[float]],
               bucket_minutes: int, settings: DetectionSettings) -> HourTests:
    """The window tests at the end of each bucket of `hour` (`counts`: "negative", optionally
    "volume"), with the baseline as it is now; the same numbers `window_signals` gives."""
    per_hour = len(counts["negative"])
    spans = [max(1, round(w / bucket_minutes)) for w in settings.windows_minutes]
    before = max(spans) - 1
    has_volume = "volume" in counts and "volume" in baseline.metrics
    key = (hour, before, per_hour, bucket_minutes)
    neg = np.array(baseline.tail("negative", hour, before, bucket_minutes) + list(counts["negative"]), dtype=float)
    neg_mean = _cached_means(baseline, "negative", key)
    cn, cm = np.concatenate(([0.0], np.cumsum(neg))), np.concatenate(([0.0], np.cumsum(neg_mean)))
    if has_volume:
        vol = np.array(baseline.tail("volume", hour, before, bucket_minutes) + list(counts["volume"]), dtype=float)
        vol_mean = _cached_means(baseline, "volume", key)
        cv, cvm = np.concatenate(([0.0], np.cumsum(vol))), np.concatenate(([0.0], np.cumsum(vol_mean)))
    ends = np.arange(before + 1, before + per_hour + 1)
    best = {d: np.zeros(per_hour) for d in WINDOW_DETECTORS}
    excess = np.full(per_hour, -np.inf)
    widest = np.zeros(per_hour)
    closing = closing_window(settings.windows_minutes)
    short = best
    volume_windows = []
    for w, span in zip(settings.windows_minutes, spans):
        observed = cn[ends] - cn[ends - span]
        expected = cm[ends] - cm[ends - span]
        enough = observed >= settings.min_negative_posts
        mean = expected
        if has_volume:
            volume = cv[ends] - cv[ends - span]
            mean = activity_scaled_mean(expected, volume - observed, cvm[ends] - cvm[ends - span] - expected)
        if "volume" in settings.detectors:
            inverse = baseline.inverse_size("negative", w)
            volume_windows.append((observed, mean, inverse))
            p = negative_binomial_tail_array(observed, mean, inverse)
            best["volume"] = np.maximum(best["volume"], np.where(enough, surprise(p), 0.0))
        if has_volume and "share" in settings.detectors:
            vol_expected = cvm[ends] - cvm[ends - span]
            p0 = np.where(vol_expected > 0, np.clip(expected / np.maximum(vol_expected, 1e-300), 1e-4, 0.9999), 0.5)
            deff = design_effect(volume, settings.share_concentration)
            p = np.where(volume > 0, binomial_tail_array(observed / deff, volume / deff, p0), 1.0)
            best["share"] = np.maximum(best["share"], np.where(enough, surprise(p), 0.0))
        excess = np.maximum(excess, observed - mean)
        if w == closing:
            widest = observed - expected  # against the calendar, not the activity (`lifecycle`)
            short = {d: best[d].copy() for d in best}
    if "volume" in settings.detectors:  # the likelihood-ratio test over the longest window's start points
        longest = max(spans)
        lags = np.arange(1, longest + 1)
        back = ends[:, None] - lags[None, :]
        factor = np.ones(per_hour)
        if has_volume:
            other = (cv[ends] - cv[ends - longest]) - (cn[ends] - cn[ends - longest])
            factor = _activity_factor(other, (cvm[ends] - cvm[ends - longest]) - (cm[ends] - cm[ends - longest]))
        llr = (math.log(CUSUM_RATE_RATIO) * (cn[ends][:, None] - cn[back])
               - (CUSUM_RATE_RATIO - 1.0) * factor[:, None] * (cm[ends][:, None] - cm[back]))
        k = np.argmax(llr, axis=1)
        stat = np.maximum(llr[np.arange(per_hour), k], 0.0)
        counted = cn[ends] - cn[back[np.arange(per_hour), k]]
        best["volume"] = np.maximum(best["volume"], np.where(counted >= settings.min_negative_posts, stat, 0.0))
    return HourTests({d: best[d] for d in WINDOW_DETECTORS if d in settings.detectors}, excess, widest,
                     volume_windows, {d: short[d] for d in WINDOW_DETECTORS if d in settings.detectors})


def _cached_means(baseline: SeasonalBaseline, metric: str, key: tuple) -> np.ndarray:
    hour, before, per_hour, bucket_minutes = key
    return _means(baseline, metric, hour, before, per_hour, bucket_minutes)


def fold_hour(
    baseline: SeasonalBaseline, hour: datetime, counts: Mapping[str, Sequence[float]], bucket_minutes: int,
    settings: DetectionSettings, posts: Iterable[tuple[int | None, int]] | None = None,
    tests: HourTests | None = None, false_alarms_per_week: float | None = None,
) -> None:
    """Learn one completed hour: calibrate each window detector on the surprises the hour's buckets
    had (`tests` when the caller already computed them), then fold the counts into the baseline.
    The first day calibrates nothing: its surprises say how wrong a cold start is, not how the
    brand's background behaves, and would make the detectors deaf for weeks. The calibration
    starts after it, whatever `warmup_hours` says, so the first hour that may alert is judged
    against the brand's own surprises."""
    if "negative" in counts and baseline.seasoned("negative"):
        tests = tests or hour_tests(baseline, hour, counts, bucket_minutes, settings)
        budget = false_alarms_per_week or settings.false_alarms_per_week
        theta = prior_theta(settings, bucket_minutes)
        for detector, values in tests.surprise.items():
            state = baseline.calibration.setdefault(detector, calibration.blank_tail(theta))
            level = calibration.surprise_for(state, alert_level(baseline, settings, budget, detector, bucket_minutes))
            calibration.tail_update(state, values.tolist(), baseline.decay_hour, level,
                                    run=max(1, round(CLUSTER_GAP_MINUTES / bucket_minutes)), prior_theta=theta)
    baseline.learn_hour(hour, counts, bucket_minutes, posts)
