"""Expected counts by hour of week, learnt online, robust to incidents, with a cold-start prior.

Model. Posts of a metric (all posts, negative posts) arrive as a Poisson process whose rate per
minute depends on the hour of week. The rate of each hour-of-week slot has a gamma posterior
(counts c, minutes m: shape c, rate m) that borrows strength from the hour of day, which borrows
from the brand's overall rate, which starts from a cold-start prior worth one hour:

    overall      a_all = c_all + r0·60      b_all = m_all + 60                 (r_all = a_all/b_all)
    hour of day  a_day = c_day + s_d        b_day = m_day + s_d/r_all,  s_d = min(1, a_all)
    hour of week a     = c_wk + s_w         b     = m_wk + s_w/r_day,   s_w = min(30, a_day)

so a new brand's slots follow its overall rate, the daily shape appears after a day, and the
weekly one as weeks accumulate. The prior shapes 1 and 30 say how far an hour of day may stray
from the overall rate (exponentially: daily cycles of 5x are common) and an hour of week from its
hour of day (about ±20%; ±35% with under a week of history, when weekdays and weekends have
not all been seen); they never claim more than the level above knows.
The predictive count for a window is negative binomial (gamma-mixed Poisson): its size is the
posterior shape (estimation uncertainty) combined with κ, the extra-Poisson variance learnt from
how far past windows strayed from their expectation: var = μ + μ²/a + κμ².

Learning is by whole hours, `lag` after they end. Each hour decays the old evidence (memory of
`memory_weeks`), then adds its count, winsorised at μ + 4σ + 4μ/size of the hour's own prediction
(about its 1-in-10,000 quantile, whether the prediction is tight or still vague), and an
hour that overlaps an incident is skipped: a crisis never teaches that crises are normal.
Everything is plain float arithmetic in a fixed order, so the same data gives the same state.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

HOUR = timedelta(hours=1)
PRIOR_MINUTES = 60.0
DAY_PRIOR_SHAPE = 1.0
WEEK_PRIOR_SHAPE = 30.0
YOUNG_WEEK_PRIOR_SHAPE = 8.0  # until a week of history exists
YOUNG_MINUTES = 6.5 * 24 * 60
# Viral-post reference before any data: ln(1+followers) ~ N(5, 2), ln(1+reposts+replies) ~ N(1, 1),
# worth 20 posts.
POST_PRIOR = (20.0, 5.0, 2.0, 1.0, 1.0)


def floor_hour(when: datetime) -> datetime:
    return when.replace(minute=0, second=0, microsecond=0)


def hour_of_week(when: datetime) -> int:
    return when.weekday() * 24 + when.hour


@dataclass(frozen=True)
class Expectation:
    """The predictive distribution of a window's count: negative binomial(mean, size)."""

    mean: float
    size: float  # math.inf: Poisson

    @property
    def sd(self) -> float:
        return math.sqrt(self.mean + (self.mean * self.mean / self.size if math.isfinite(self.size) else 0.0))


@dataclass(frozen=True)
class ReachStats:
    """Mean and spread of ln(1+followers) and ln(1+engagement) over the brand's recent posts."""

    posts: float
    followers_mean: float
    followers_sd: float
    engagement_mean: float
    engagement_sd: float


def _blank_metric() -> dict[str, Any]:
    return {"wc": [0.0] * 168, "wm": [0.0] * 168, "dc": [0.0] * 24, "dm": [0.0] * 24, "ac": 0.0, "am": 0.0, "k": {}}


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
        self.kappa_windows = sorted({w for w in windows_minutes if w <= 60}) or [60]
        self.decay_hour = 1.0 - 1.0 / (168.0 * memory_weeks)
        self.decay_day = 1.0 - 1.0 / (7.0 * memory_weeks)
        self.decay_week = 1.0 - 1.0 / memory_weeks
        state = dict(state or {})
        self.hours = int(state.get("hours", 0))
        self.metrics: dict[str, dict[str, Any]] = {m: _blank_metric() for m in self.cold}
        for name, saved in (state.get("metrics") or {}).items():
            if name in self.metrics:
                self.metrics[name] = {**_blank_metric(), **saved, "k": dict(saved.get("k", {}))}
        n, fm, fs, em, es = POST_PRIOR
        self.posts = dict(state.get("posts") or {"n": n, "f1": n * fm, "f2": n * (fs * fs + fm * fm),
                                                  "e1": n * em, "e2": n * (es * es + em * em)})
        self._cache: dict[tuple[str, datetime], tuple[float, float]] = {}
        self._kappa_cache: dict[tuple[str, float], float] = {}

    def state(self) -> dict[str, Any]:
        return {"v": 1, "hours": self.hours, "metrics": self.metrics, "posts": self.posts}

    # -- prediction -------------------------------------------------------------------------

    def _slot(self, metric: str, hour: datetime) -> tuple[float, float]:
        """Gamma posterior (shape, rate per minute) of the rate in this hour's slot."""
        key = (metric, hour)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        s = self.metrics[metric]
        b_all = s["am"] + PRIOR_MINUTES
        a_all = s["ac"] + self.cold[metric] * PRIOR_MINUTES
        h, hw = hour.hour, hour_of_week(hour)
        s_d = min(DAY_PRIOR_SHAPE, a_all)
        a_day = s["dc"][h] + s_d
        b_day = s["dm"][h] + s_d * b_all / a_all
        young = s["am"] < YOUNG_MINUTES  # weekday/weekend differences are unknown yet: a wider prior
        s_w = min(YOUNG_WEEK_PRIOR_SHAPE if young else WEEK_PRIOR_SHAPE, a_day)
        result = (s["wc"][hw] + s_w, s["wm"][hw] + s_w * b_day / a_day)
        self._cache[key] = result
        return result

    def kappa(self, metric: str, window_minutes: float) -> float:
        key = (metric, window_minutes)
        hit = self._kappa_cache.get(key)
        if hit is None:
            usable = [w for w in self.kappa_windows if w <= window_minutes] or self.kappa_windows[:1]
            num, den = self.metrics[metric]["k"].get(str(usable[-1]), (0.0, 0.0))
            hit = self._kappa_cache[key] = max(0.0, num / den) if den > 0 else 0.0
        return hit

    def estimate(self, metric: str, start: datetime, end: datetime) -> Expectation:
        """Expected count over [start, end) with estimation uncertainty only (no κ)."""
        hour = floor_hour(start)
        if end <= hour + HOUR:  # the usual case: one slot
            a, b = self._slot(metric, hour)
            w = (end - start).total_seconds() / 60.0
            return Expectation(w * a / b, a) if w > 0 else Expectation(0.0, math.inf)
        mean = var = 0.0
        t = start
        while t < end:
            hour = floor_hour(t)
            seg_end = min(end, hour + HOUR)
            w = (seg_end - t).total_seconds() / 60.0
            a, b = self._slot(metric, hour)
            mean += w * a / b
            var += w * w * a / (b * b)
            t = seg_end
        return Expectation(mean, mean * mean / var if var > 0 else math.inf)

    def expect(self, metric: str, start: datetime, end: datetime) -> Expectation:
        """The predictive negative binomial for the count over [start, end)."""
        est = self.estimate(metric, start, end)
        inverse = (1.0 / est.size if math.isfinite(est.size) else 0.0) + self.kappa(
            metric, (end - start).total_seconds() / 60.0)
        return Expectation(est.mean, 1.0 / inverse if inverse > 0 else math.inf)

    def rate_per_week(self, metric: str) -> float:
        s = self.metrics[metric]
        return 10080.0 * (s["ac"] + self.cold[metric] * PRIOR_MINUTES) / (s["am"] + PRIOR_MINUTES)

    def reach_stats(self) -> ReachStats:
        p = self.posts
        n = p["n"]
        fm, em = p["f1"] / n, p["e1"] / n
        return ReachStats(n, fm, math.sqrt(max(p["f2"] / n - fm * fm, 1e-6)),
                          em, math.sqrt(max(p["e2"] / n - em * em, 1e-6)))

    # -- learning -----------------------------------------------------------------------------

    def learn_hour(
        self,
        hour: datetime,
        counts: Mapping[str, Sequence[float]],
        bucket_minutes: int,
        excluded: bool = False,
        posts: Iterable[tuple[int | None, int]] = (),
    ) -> None:
        """Fold one completed hour: per metric, its counts per bucket (60/bucket_minutes of them).

        `posts` are (followers, reposts + replies) of the hour's original posts, for the viral
        detector's reference. An excluded hour (inside an incident) teaches nothing.
        """
        self._cache.clear()
        self._kappa_cache.clear()
        self.hours += 1
        if excluded:
            return
        end = hour + HOUR
        for metric, buckets in counts.items():
            if metric not in self.metrics:
                continue
            s = self.metrics[metric]
            est = self.estimate(metric, hour, end)
            self._learn_kappa(metric, s, est, buckets, bucket_minutes)
            self._kappa_cache.clear()
            predictive = self.expect(metric, hour, end)
            skew = 4.0 * predictive.mean / predictive.size if math.isfinite(predictive.size) else 0.0
            total = min(float(sum(buckets)), predictive.mean + 4.0 * predictive.sd + skew + 1.0)
            hd, hw = hour.hour, hour_of_week(hour)
            s["ac"] = self.decay_hour * s["ac"] + total
            s["am"] = self.decay_hour * s["am"] + 60.0
            s["dc"][hd] = self.decay_day * s["dc"][hd] + total
            s["dm"][hd] = self.decay_day * s["dm"][hd] + 60.0
            s["wc"][hw] = self.decay_week * s["wc"][hw] + total
            s["wm"][hw] = self.decay_week * s["wm"][hw] + 60.0
        self._cache.clear()
        self._learn_posts(posts)

    def _learn_kappa(
        self, metric: str, s: dict[str, Any], est: Expectation, buckets: Sequence[float], bucket_minutes: int
    ) -> None:
        """Method of moments for κ per window length: E[(c-μ)² - μ - μ²/a] = κμ²."""
        inv_size = 1.0 / est.size if math.isfinite(est.size) else 0.0
        for w in self.kappa_windows:
            per_chunk = max(1, round(w / bucket_minutes))
            chunks = len(buckets) // per_chunk
            if chunks == 0:
                continue
            mu = est.mean * per_chunk / len(buckets)
            kappa = self.kappa(metric, w)
            cap = mu + 6.0 * math.sqrt(mu + mu * mu * (inv_size + kappa)) + 1.0
            num = den = 0.0
            for i in range(chunks):
                c = min(float(sum(buckets[i * per_chunk:(i + 1) * per_chunk])), cap)
                num += (c - mu) ** 2 - mu - mu * mu * inv_size
                den += mu * mu
            old_num, old_den = s["k"].get(str(w), (0.0, 0.0))
            s["k"][str(w)] = [self.decay_hour * old_num + num, self.decay_hour * old_den + den]

    def _learn_posts(self, posts: Iterable[tuple[int | None, int]]) -> None:
        p = self.posts
        for key in p:
            p[key] *= self.decay_hour
        for followers, engagement in posts:
            f, e = math.log1p(max(followers or 0, 0)), math.log1p(max(engagement, 0))
            p["n"] += 1.0
            p["f1"] += f
            p["f2"] += f * f
            p["e1"] += e
            p["e2"] += e * e
        n, fm, fs, em, es = POST_PRIOR  # keep the prior's weight so the reference never collapses
        if p["n"] < n:
            scale = n / p["n"]
            for key in p:
                p[key] *= scale
