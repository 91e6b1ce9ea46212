"""Negative volume against the calendar: a negative binomial tail test per sliding window.

Expected negatives come from the baseline. When the brand is busier than usual in non-negative
posts (a launch, a campaign), the expectation scales with that activity at the usual
negative-to-other ratio, so a benign surge does not read as a complaint surge; only negatives
beyond both the calendar and the current activity count. The p-value is the model's; `windows`
calibrates it against how often the brand's own history reaches it.
"""
from __future__ import annotations

from datetime import datetime

import numpy as np

from monitor.detection.baseline import SeasonalBaseline
from monitor.detection.signals import Signal
from monitor.detection.stats import negative_binomial_tail


def activity_scaled_mean(expected: np.ndarray | float, other_observed: np.ndarray | float,
                         other_expected: np.ndarray | float) -> np.ndarray:
    """The expected negatives, raised in proportion when non-negative posts run above their own
    expectation (vectorised; never below `expected`)."""
    expected, other_observed, other_expected = (np.asarray(x, dtype=float) for x in (expected, other_observed, other_expected))
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = np.where(other_expected > 0, other_observed * expected / np.where(other_expected > 0, other_expected, 1.0), expected)
    return np.maximum(expected, scaled)


def check_negative_volume(
    baseline: SeasonalBaseline, start: datetime, end: datetime, window_minutes: int,
    negative: int, volume: int | None, alpha: float, min_posts: int, metric: str = "negative",
) -> Signal:
    """`volume` None: a plain count series (backtest), tested against its own baseline only."""
    expected = baseline.expect(metric, start, end)
    mean, activity_scaled = expected.mean, False
    if volume is not None and "volume" in baseline.metrics:
        other_expected = baseline.estimate("volume", start, end).mean - mean
        scaled = float(activity_scaled_mean(mean, volume - negative, other_expected))
        if scaled > mean:
            mean, activity_scaled = scaled, True
    p_value = negative_binomial_tail(negative, mean, expected.size)
    return Signal(
        detector="volume", window_minutes=window_minutes, window_start=start, observed=float(negative),
        expected=mean, p_value=p_value, threshold=alpha, fired=negative >= min_posts and p_value <= alpha,
        extra={"size": round(expected.size, 3) if expected.size < 1e12 else None, "activity_scaled": activity_scaled,
               "calendar_expected": round(expected.mean, 3)},  # what "back to normal" is judged on (`lifecycle`)
    )
