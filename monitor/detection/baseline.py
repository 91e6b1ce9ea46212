"""Expected counts learnt online from real, bursty mention streams: level x daily x weekly shape.

Model. The rate per minute of a metric (all posts, negative posts) in hour h is

    rate(h) = L · D[hour of day] · W[hour of week] · F

- L, the slow level, is a ratio estimator with a week of memory (`SLOW_LEVEL_MEMORY_HOURS`): the
  daily and weekly shapes are learnt against it, so a weekend does not read as a level change;
- D and W are ratio estimators R = Σ counts / Σ expected with `memory_weeks` of memory, shrunk
  towards 1 (flat) on the log scale as an empirical-Bayes estimate would: R^(V/(V + var R)), V the
  prior spread of the shape (`DAY_SHAPE_VARIANCE`, `WEEK_SHAPE_VARIANCE`), var R its sampling
  variance under the learnt dispersion, 1/Σc + κ·Σμ²/(Σμ)². A busy, regular brand gets its rhythm
  within days; a quiet or bursty one keeps a flat profile until its counts can tell rhythm from noise;
- F, the fast level, is the ratio of the last day's counts to what L·D·W predicted
  (`FAST_LEVEL_MEMORY_HOURS`, shrunk towards 1 the same way), so trends and level
  shifts are followed within a day or two.

The daily shape, the fast level and the dispersion start learning after the first day (whose
hours then initialise the level and daily shape at once, each hour against the day's mean), the weekly shape after
the first week
(`DAY_AFTER_MINUTES`, `WEEK_AFTER_MINUTES`): before a whole cycle has been seen, the level cannot be
told from the hour of day (or the hour of week from the hour of day), and a shape learnt against a
level still near the cold-start prior would stay wrong for weeks.

Robust learning (Gelper, Fried & Croux 2010, "Robust forecasting with exponential and Holt-Winters
smoothing"). Each hour is compared with its own prediction on the log scale; the standardised
residual r = log((c+½)/(μ+½)) / σ is passed through Huber's ψ (clipped at ±`HUBER_K`), and the
hour is learnt as the count that ψ(r) corresponds to. An ordinary hour is learnt exactly as seen;
a burst counts as "a bit high" (at most HUBER_K σ): it down-weights itself instead of blinding
the baseline, and a lasting new level still pulls the baseline up by that much every hour, so it
is learnt within a day. σ combines the learnt dispersion, the Poisson noise of the count and the
uncertainty of the estimate itself (large at cold start, so the first hours are learnt as they are).

Dispersion. Real counts vary far more than Poisson. For each window length w, τ²(w), the variance
of log(rate) between w-minute windows beyond Poisson noise, is learnt from the hour's w-minute
chunks as a clipped mean of d² - v(μ), d the chunk's log residual and v(μ) ≈ μ/(μ+½)² its Poisson
part. The predictive count of a window is then negative binomial with κ = exp(τ²) - 1 (a lognormal
rate's extra variance). That is the body of the distribution; its heavy tail is left to
`calibration`, which learns how often the resulting p-values are really reached.

Everything is float arithmetic in a fixed order, so the same data gives the same state.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from scipy.special import gammaln

from monitor.detection import calibration

HOUR = timedelta(hours=1)
PRIOR_MINUTES = 60.0  # the cold-start rate is worth one hour of data
SLOW_LEVEL_MEMORY_HOURS = 168.0
FAST_LEVEL_MEMORY_HOURS = 24.0
FAST_LEVEL_VARIANCE = 0.25  # the level may move by about half within days
# Dispersion remembers about a week, so a transient misfit fades. The detectors' calibration and
# the viral reference remember `memory_weeks` (`decay_hour`): a 1-in-2,000 bucket tail needs weeks
# of exceedances (on NAB, a week or two of memory loses two windows of sixteen).
SPREAD_MEMORY_HOURS = 168.0
DAY_SHAPE_VARIANCE = 1.0  # hours of the day differ by factors of e (nights are quiet)
WEEK_SHAPE_VARIANCE = 0.1  # an hour of the week differs from its hour of day by about ±30%
HUBER_K = 2.0
DAY_AFTER_MINUTES = 24 * 60.0
WEEK_AFTER_MINUTES = 7 * 24 * 60.0
# Cold start: the prior rate may be wrong by a factor of e^2 either way (log-sd 2); its share of
# the level (worth PRIOR_MINUTES of data) and so its error fade as minutes are learnt.
PRIOR_LOG_VARIANCE = 4.0
TAU2_PRIOR = 0.05  # between-window log-variance before any data, worth TAU2_PRIOR_WEIGHT chunks
TAU2_PRIOR_WEIGHT = 24.0
TAU2_CLIP = 9.0  # chunks beyond 3 σ count as 3 σ when learning the dispersion (the tail is calibration's)


def floor_hour(when: datetime) -> datetime:
    return when.replace(minute=0, second=0, microsecond=0)


def hour_of_week(when: datetime) -> int:
    return when.weekday() * 24 + when.hour


def _poisson_log_table() -> tuple[np.ndarray, np.ndarray]:
    grid = np.logspace(-3, 3, 241)
    values = []
    for mu in grid:
        k = np.arange(0, int(mu + 12 * math.sqrt(mu) + 30))
        log_pmf = k * math.log(mu) - mu - gammaln(k + 1)
        d = np.log((k + 0.5) / (mu + 0.5))
        values.append(float((np.exp(log_pmf) * d * d).sum()))
    return np.log(grid), np.array(values)


_LOG_GRID, _LOG_VARIANCE = _poisson_log_table()


def poisson_log_variance(mean: float) -> float:
    """E[log((X + ½)/(mean + ½))²] for X ~ Poisson(mean): the Poisson part of a log residual's
    square (tabulated; the delta method's mean/(mean+½)² is off by half at a few posts)."""
    if mean <= 1e-3:
        return float(_LOG_VARIANCE[0] * mean / 1e-3)
    if mean >= 1e3:
        return mean / ((mean + 0.5) ** 2)
    return float(np.interp(math.log(mean), _LOG_GRID, _LOG_VARIANCE))


@dataclass(frozen=True)
class Expectation:
    """The predictive distribution of a window's count: negative binomial(mean, size)."""

    mean: float
    size: float  # math.inf: Poisson

    @property
    def sd(self) -> float:
        return math.sqrt(self.mean + (self.mean * self.mean / self.size if math.isfinite(self.size) else 0.0))


def _shrunk(counts: float, expected: float, expected_sq: float, kappa: float, prior_variance: float) -> float:
    """The ratio counts/expected shrunk towards 1 on the log scale by its sampling variance."""
    if expected <= 0.0:
        return 1.0
    ratio = max(counts, 0.5) / expected
    variance = 1.0 / max(counts, 0.5) + kappa * expected_sq / (expected * expected)
    return ratio ** (prior_variance / (prior_variance + variance))


def _blank_metric() -> dict[str, Any]:
    return {"lc": 0.0, "lm": 0.0, "fc": 0.0, "fe": 0.0, "fq": 0.0, "dc": [0.0] * 24, "de": [0.0] * 24,
            "dq": [0.0] * 24, "wc": [0.0] * 168, "we": [0.0] * 168, "wq": [0.0] * 168,
            "minutes": 0.0, "t2": {}, "tail": [], "tail_end": None, "recent": []}


class SeasonalBaseline:
    """The learnt state of one brand (or one backtest series); see the module docstring."""

    def __init__(
        self,
        cold_rates_per_hour: Mapping[str, float],
        windows_minutes: Sequence[int],
        memory_weeks: float = 4.0,
        state: Mapping[str, Any] | None = None,
    ) -> None:
        self.cold = {m: r / 60.0 for m, r in cold_rates_per_hour.items()}
        self.windows = sorted(set(windows_minutes))
        # Windows up to an hour learn their spread from the hour's chunks; longer whole-hour
        # windows from the last hours' totals.
        self.kappa_windows = sorted({w for w in windows_minutes if w <= 60 or w % 60 == 0} | {60})
        self.long_hours = max([w // 60 for w in self.kappa_windows if w > 60], default=0)
        self.decay_level = 1.0 - 1.0 / SLOW_LEVEL_MEMORY_HOURS
        self.decay_fast = 1.0 - 1.0 / FAST_LEVEL_MEMORY_HOURS
        self.decay_spread = 1.0 - 1.0 / SPREAD_MEMORY_HOURS
        self.decay_hour = 1.0 - 1.0 / (168.0 * memory_weeks)
        self.decay_day = 1.0 - 1.0 / (7.0 * memory_weeks)
        self.decay_week = 1.0 - 1.0 / memory_weeks
        state = dict(state or {})
        if state.get("v") != 2:
            state = {}  # an older model's state: start afresh rather than misread it
        self.hours = int(state.get("hours", 0))
        self.metrics: dict[str, dict[str, Any]] = {m: _blank_metric() for m in self.cold}
        for name, saved in (state.get("metrics") or {}).items():
            if name in self.metrics:
                self.metrics[name] = {**_blank_metric(), **saved, "t2": dict(saved.get("t2", {}))}
        self.calibration: dict[str, list[float]] = {k: list(v) for k, v in (state.get("cal") or {}).items()}
        self.posts: dict[str, list[float]] = {k: list(v) for k, v in (state.get("posts") or {}).items()}
        self._cache: dict[tuple[str, datetime], float] = {}

    def state(self) -> dict[str, Any]:
        return {"v": 2, "hours": self.hours, "metrics": self.metrics, "cal": self.calibration, "posts": self.posts}

    # -- prediction -------------------------------------------------------------------------

    def _factors(self, metric: str, hour: datetime) -> tuple[float, float, float, float]:
        s = self.metrics[metric]
        kappa = self.kappa(metric, 60)
        fast = _shrunk(s["fc"], s["fe"], s["fq"], kappa, FAST_LEVEL_VARIANCE)
        level = (s["lc"] + self.cold[metric] * PRIOR_MINUTES) / (s["lm"] + PRIOR_MINUTES)
        h, hw = hour.hour, hour_of_week(hour)
        day = _shrunk(s["dc"][h], s["de"][h], s["dq"][h], kappa, DAY_SHAPE_VARIANCE)
        week = _shrunk(s["wc"][hw], s["we"][hw], s["wq"][hw], kappa, WEEK_SHAPE_VARIANCE)
        return level, day, week, fast

    def rate(self, metric: str, hour: datetime) -> float:
        """Expected posts per minute in this hour."""
        key = (metric, hour)
        hit = self._cache.get(key)
        if hit is None:
            level, day, week, fast = self._factors(metric, hour)
            hit = self._cache[key] = level * day * week * fast
        return hit

    def estimate_log_variance(self, metric: str) -> float:
        """Relative variance of the estimated rate itself: counting noise of the level, plus the
        cold-start prior's doubt fading with the minutes learnt."""
        s = self.metrics[metric]
        posts = s["lc"] + self.cold[metric] * PRIOR_MINUTES
        prior_weight = PRIOR_MINUTES / (PRIOR_MINUTES + s["minutes"])  # the prior's share of the level
        return 1.0 / max(posts, 1e-9) + PRIOR_LOG_VARIANCE * prior_weight * prior_weight

    def tau2(self, metric: str, window_minutes: float) -> float:
        usable = [w for w in self.kappa_windows if w <= window_minutes] or self.kappa_windows[:1]
        num, den = self.metrics[metric]["t2"].get(str(usable[-1]), (0.0, 0.0))
        return max(0.0, (num + TAU2_PRIOR * TAU2_PRIOR_WEIGHT) / (den + TAU2_PRIOR_WEIGHT))

    def kappa(self, metric: str, window_minutes: float) -> float:
        """Extra-Poisson variance of a window's count, as var = μ + κμ² (plus estimation noise)."""
        return math.expm1(self.tau2(metric, window_minutes))

    def inverse_size(self, metric: str, window_minutes: float) -> float:
        """1/size of the predictive negative binomial: dispersion plus the estimate's own doubt."""
        return self.kappa(metric, window_minutes) + math.expm1(min(self.estimate_log_variance(metric), 5.0))

    def estimate(self, metric: str, start: datetime, end: datetime) -> Expectation:
        """Expected count over [start, end) (the size says only how uncertain the estimate is)."""
        mean = 0.0
        t = start
        while t < end:
            hour = floor_hour(t)
            seg_end = min(end, hour + HOUR)
            mean += (seg_end - t).total_seconds() / 60.0 * self.rate(metric, hour)
            t = seg_end
        inverse = math.expm1(min(self.estimate_log_variance(metric), 5.0))
        return Expectation(mean, 1.0 / inverse if inverse > 0 else math.inf)

    def expect(self, metric: str, start: datetime, end: datetime) -> Expectation:
        """The predictive negative binomial for the count over [start, end)."""
        mean = self.estimate(metric, start, end).mean
        inverse = self.inverse_size(metric, (end - start).total_seconds() / 60.0)
        return Expectation(mean, 1.0 / inverse if inverse > 0 else math.inf)

    def rate_per_week(self, metric: str) -> float:
        s = self.metrics[metric]
        return 10080.0 * (s["lc"] + self.cold[metric] * PRIOR_MINUTES) / (s["lm"] + PRIOR_MINUTES)

    def tail(self, metric: str, hour: datetime, buckets: int, bucket_minutes: int) -> list[float]:
        """The last `buckets` bucket counts before `hour` (zeros where nothing was seen)."""
        s = self.metrics[metric]
        known: list[float] = []
        if s["tail_end"] is not None:
            gap = max(0, int((hour - datetime.fromisoformat(s["tail_end"])) / HOUR))
            known = list(s["tail"]) + [0.0] * (gap * max(1, 60 // bucket_minutes))  # no rows: no posts
        known = known[-buckets:] if buckets > 0 else []
        return [0.0] * (buckets - len(known)) + known

    # -- learning -----------------------------------------------------------------------------

    def learn_hour(
        self,
        hour: datetime,
        counts: Mapping[str, Sequence[float]],
        bucket_minutes: int,
        posts: Iterable[tuple[int | None, int]] | None = None,
    ) -> None:
        """Fold one completed hour: per metric, its counts per bucket (60/bucket_minutes of them).

        `posts` are (followers, reposts + replies) of the hour's original posts, for the viral
        detector's reference distributions (None: a count series without posts).
        """
        self._cache.clear()
        self.hours += 1
        hd, hw = hour.hour, hour_of_week(hour)
        for metric, buckets in counts.items():
            if metric not in self.metrics:
                continue
            s = self.metrics[metric]
            rate = self.rate(metric, hour)
            level, day, week, _ = self._factors(metric, hour)
            est_var = self.estimate_log_variance(metric)
            if s["minutes"] >= DAY_AFTER_MINUTES:  # the first day's misfit is the cold start's, not noise
                self._learn_tau2(metric, s, rate, buckets, bucket_minutes, est_var)
            if self.long_hours:
                recent = s.setdefault("recent", [])
                recent.append([float(sum(buckets)), rate * 60.0])
                del recent[:-self.long_hours]
                if s["minutes"] >= DAY_AFTER_MINUTES:
                    self._learn_long_tau2(metric, s, recent, est_var)
            mu = rate * 60.0
            total = float(sum(buckets))
            sigma = math.sqrt(self.tau2(metric, 60) + poisson_log_variance(mu) + est_var)
            r = math.log((total + 0.5) / (mu + 0.5)) / sigma
            cleaned = total if abs(r) <= HUBER_K else max(
                0.0, (mu + 0.5) * math.exp(math.copysign(HUBER_K, r) * sigma) - 0.5)
            s["lc"] = self.decay_level * s["lc"] + cleaned / (day * week)
            s["lm"] = self.decay_level * s["lm"] + 60.0
            if s["minutes"] >= DAY_AFTER_MINUTES:
                s["fc"] = self.decay_fast * s["fc"] + cleaned
                expected = 60.0 * level * day * week
                s["fe"] = self.decay_fast * s["fe"] + expected
                s["fq"] = self.decay_fast * s["fq"] + expected * expected
                s["dc"][hd] = self.decay_day * s["dc"][hd] + cleaned
                expected = 60.0 * level * week
                s["de"][hd] = self.decay_day * s["de"][hd] + expected
                s["dq"][hd] = self.decay_day * s["dq"][hd] + expected * expected
            else:
                s.setdefault("first_day", []).append([hd, total])
            if s["minutes"] >= WEEK_AFTER_MINUTES:
                s["wc"][hw] = self.decay_week * s["wc"][hw] + cleaned
                expected = 60.0 * level * day
                s["we"][hw] = self.decay_week * s["we"][hw] + expected
                s["wq"][hw] = self.decay_week * s["wq"][hw] + expected * expected
            s["minutes"] += 60.0
            if s["minutes"] >= DAY_AFTER_MINUTES and s.get("first_day"):
                self._start_from_first_day(s)
            self._remember_tail(s, metric, hour, buckets, bucket_minutes)
        self._cache.clear()
        if posts is not None:
            self._learn_posts(posts)

    @staticmethod
    def _start_from_first_day(s: dict[str, Any]) -> None:
        """Initialise the level and the daily shape from the whole first day, as Holt-Winters
        starts from its first season: each hour of day against the day's mean."""
        day = s.pop("first_day")
        mean = sum(c for _, c in day) / len(day)  # per hour
        s["lc"], s["lm"] = mean * len(day), 60.0 * len(day)
        for hd, count in day:
            s["dc"][hd] += count
            s["de"][hd] += mean
            s["dq"][hd] += mean * mean

    def _learn_tau2(self, metric: str, s: dict[str, Any], rate: float, buckets: Sequence[float],
                    bucket_minutes: int, est_var: float) -> None:
        for w in self.kappa_windows:
            per_chunk = max(1, round(w / bucket_minutes))
            chunks = len(buckets) // per_chunk
            if chunks == 0:
                continue
            mu = rate * per_chunk * bucket_minutes
            v = poisson_log_variance(mu)
            bound = TAU2_CLIP * (self.tau2(metric, w) + v + est_var)
            num = 0.0
            for i in range(chunks):
                c = float(sum(buckets[i * per_chunk:(i + 1) * per_chunk]))
                d = math.log((c + 0.5) / (mu + 0.5))
                num += min(d * d, bound) - v - est_var
            old_num, old_den = s["t2"].get(str(w), (0.0, 0.0))
            s["t2"][str(w)] = [self.decay_spread * old_num + num, self.decay_spread * old_den + chunks]

    def _learn_long_tau2(self, metric: str, s: dict[str, Any], recent: list[list[float]], est_var: float) -> None:
        """Spread of windows of whole hours: the last hours' total against what was predicted."""
        for w in self.kappa_windows:
            k = w // 60
            if w <= 60 or len(recent) < k:
                continue
            c = sum(h[0] for h in recent[-k:])
            mu = sum(h[1] for h in recent[-k:])
            v = poisson_log_variance(mu)
            bound = TAU2_CLIP * (self.tau2(metric, w) + v + est_var)
            d = math.log((c + 0.5) / (mu + 0.5))
            old_num, old_den = s["t2"].get(str(w), (0.0, 0.0))
            s["t2"][str(w)] = [self.decay_spread * old_num + min(d * d, bound) - v - est_var,
                               self.decay_spread * old_den + 1.0]

    def _remember_tail(self, s: dict[str, Any], metric: str, hour: datetime, buckets: Sequence[float],
                       bucket_minutes: int) -> None:
        keep = max(1, math.ceil(max(self.windows) / bucket_minutes))
        known = self.tail(metric, hour, keep, bucket_minutes) + [float(b) for b in buckets]
        s["tail"] = known[-keep:]
        s["tail_end"] = (hour + HOUR).isoformat()

    def _learn_posts(self, posts: Iterable[tuple[int | None, int]]) -> None:
        followers, engagement = [], []
        for f, e in posts:
            followers.append(math.log1p(max(f or 0, 0)))
            engagement.append(math.log1p(max(e, 0)))
        for key, values in (("followers", followers), ("engagement", engagement)):
            hist = self.posts.get(key)
            if hist is None:
                hist = self.posts[key] = calibration.blank_histogram(key)
            calibration.histogram_update(hist, values, self.decay_hour)

    def seasoned(self, metric: str) -> bool:
        """Whether a whole day has been learnt: before that, misfits are the cold start's."""
        return self.metrics[metric]["minutes"] >= DAY_AFTER_MINUTES
