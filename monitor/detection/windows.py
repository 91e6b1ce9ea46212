"""Sliding-window evaluation shared by the daemon (buckets from the database) and backtests.

A window of w minutes at time `now` covers the buckets starting in [now - w, now), the current
partial bucket included, and its expectation covers exactly that span, so a tick between bucket
boundaries compares like with like.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.detection.baseline import SeasonalBaseline
from monitor.detection.settings import DetectionSettings
from monitor.detection.share import check_negative_share
from monitor.detection.signals import Signal
from monitor.detection.stats import MINUTES_PER_WEEK, per_test_alpha
from monitor.detection.volume import check_negative_volume


@dataclass(frozen=True)
class BucketRow:
    start: datetime
    negative: int
    volume: int | None  # None for a plain count series


def detector_share(settings: DetectionSettings, detector: str) -> float:
    """Each enabled detector spends an equal share of the weekly false-alarm budget."""
    return 1.0 / len(settings.detectors) if detector in settings.detectors else 0.0


def tests_per_week(window_minutes: int, bucket_minutes: int) -> float:
    """How many tests a window re-evaluated every bucket amounts to, for Bonferroni.

    Its non-overlapping positions (10080/w) undercount: a sliding window's maximum exceeds a
    level more often than any fixed position does. Scan-statistic approximations grow with the
    logarithm of the oversampling, so we count 10080/w · (1 + ln(w/b)) tests, between the
    non-overlapping count and one per bucket (which is the fully conservative bound).
    """
    w = max(window_minutes, bucket_minutes)
    return MINUTES_PER_WEEK / w * (1.0 + math.log(w / bucket_minutes))


def window_alpha(settings: DetectionSettings, false_alarms_per_week: float, detector: str,
                 window_minutes: int, bucket_minutes: int = 1) -> float:
    return _alpha(tuple(settings.detectors), len(settings.windows_minutes), false_alarms_per_week, detector,
                  window_minutes, bucket_minutes)


@functools.lru_cache(maxsize=1024)
def _alpha(detectors: tuple[str, ...], windows: int, false_alarms_per_week: float, detector: str,
           window_minutes: int, bucket_minutes: int) -> float:
    share = (1.0 / len(detectors) if detector in detectors else 0.0) / windows
    return per_test_alpha(false_alarms_per_week, share, tests_per_week(window_minutes, bucket_minutes))


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
            alpha = window_alpha(settings, false_alarms_per_week, "volume", w, bucket_minutes)
            signals.append(check_negative_volume(
                baseline, window_start, now, w, negative[i], volume[i] if has_volume else None, alpha,
                settings.min_negative_posts))
        if with_share:
            alpha = window_alpha(settings, false_alarms_per_week, "share", w, bucket_minutes)
            signals.append(check_negative_share(
                baseline, window_start, now, w, negative[i], volume[i], alpha, settings.min_negative_posts,
                settings.share_concentration))
    return signals


def _first_bucket_start(start: datetime, now: datetime, bucket_minutes: int) -> datetime:
    """Minute buckets: the first minute at or after `start`. Coarser series are evaluated on
    their own grid (now - w is a bucket start), so `start` is one already."""
    if bucket_minutes > 1:
        return start
    floor = start.replace(second=0, microsecond=0)
    return min(floor if floor == start else floor + timedelta(minutes=1), now)
