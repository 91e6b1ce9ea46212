"""Negative share against its usual level: a binomial tail test with a design effect.

The usual share p0 is the baseline's expected negatives over expected volume for the window.
Shares vary between windows more than a binomial allows (conversations cluster), so n posts
count as n/deff independent ones, deff = 1 + (n-1)/(c+1): the beta-binomial variance with
concentration c (`share_concentration`).
"""
from __future__ import annotations

from datetime import datetime

import numpy as np

from monitor.detection.baseline import SeasonalBaseline
from monitor.detection.signals import Signal
from monitor.detection.stats import binomial_tail


def design_effect(volume: np.ndarray | float, concentration: float) -> np.ndarray:
    """1 + (n-1)/(c+1): how many posts count as one independent one (vectorised)."""
    return 1.0 + np.maximum(np.asarray(volume, dtype=float) - 1.0, 0.0) / (concentration + 1.0)


def check_negative_share(
    baseline: SeasonalBaseline, start: datetime, end: datetime, window_minutes: int,
    negative: int, volume: int, alpha: float, min_posts: int, concentration: float,
) -> Signal:
    expected_volume = baseline.estimate("volume", start, end).mean
    expected_negative = baseline.estimate("negative", start, end).mean
    p0 = min(max(expected_negative / expected_volume, 1e-4), 0.9999) if expected_volume > 0 else 0.5
    deff = float(design_effect(volume, concentration))
    p_value = binomial_tail(negative / deff, volume / deff, p0) if volume else 1.0
    return Signal(
        detector="share", window_minutes=window_minutes, window_start=start, observed=float(negative),
        expected=p0 * volume, p_value=p_value, threshold=alpha,
        fired=negative >= min_posts and p_value <= alpha,
        extra={"volume": volume, "share": round(negative / volume, 4) if volume else None,
               "usual_share": round(p0, 4)},
    )
