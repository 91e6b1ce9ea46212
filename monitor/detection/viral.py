"""A single negative post that is spreading unusually fast for this brand, before the volume moves.

Each recent negative post's engagement velocity, ln(1 + (reposts + replies) per hour since it began
spreading, under an hour counting as an hour), is compared with the brand's own distribution of engagement
(`calibration.histogram_tail`: a decayed histogram of its posts, with a Pareto tail fitted beyond
its 95th percentile), and so is its author's reach (followers), so what is ordinary for a brand with
a large, heavy-tailed audience never pages anyone. The two tail probabilities are combined by
Fisher's method (exact for two: p·(1 - ln p) of their product), but only for a post whose
engagement is itself unusual (p <= `ENGAGEMENT_GATE`): a big account saying something nobody picks
up is not spreading, and reach alone never fires. The gate keeps the test's level.
A post is one test, so the per-test level spends the budget over the negative posts of a week.

An older post copied again within the lookback (same text: ingest folds a copy into its original)
spreads anew: it is judged on the engagement its copies brought within the lookback, from its first
copy there, as a post created then would be on its own, with the reach of the copy that brought the
most. Measured over the original's age instead, a re-shared old post would need its age in hours
times a new post's engagement to be seen. Each such spell is at least one negative mention (the
copies count in the volume with the original's verdict), so the per-test level still holds.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from monitor.detection import calibration
from monitor.detection.signals import Signal


@dataclass(frozen=True)
class RecentPost:
    id: int
    since: datetime  # when it began spreading: its creation, or its first copy in the lookback
    followers: int | None  # its author's, or for a copied older post the reach of the copy that carries it
    engagement: int  # reposts + replies since then


ENGAGEMENT_GATE = 0.05


def combined_p(p_engagement: float, p_reach: float) -> float:
    """Fisher's combination of the two tail probabilities, for posts whose engagement is unusual."""
    if p_engagement > ENGAGEMENT_GATE:
        return p_engagement
    product = max(p_engagement * p_reach, 1e-300)
    return min(p_engagement, product * (1.0 - math.log(product)))


def post_alpha(false_alarms_per_week: float, share: float, negative_posts_per_week: float) -> float:
    return min(0.5, false_alarms_per_week * share / max(negative_posts_per_week, 1.0))


def velocity(engagement: int, since: datetime, now: datetime) -> float:
    """ln(1 + engagement per hour since `since`); under an hour, the whole engagement counts."""
    hours = max((now - since).total_seconds() / 3600.0, 1.0)
    return math.log1p(max(engagement, 0) / hours)


def _reference(histograms: Mapping[str, Sequence[float]], kind: str) -> Sequence[float]:
    return histograms.get(kind) or calibration.blank_histogram(kind)


def check_viral_posts(posts: list[RecentPost], histograms: Mapping[str, Sequence[float]], alpha: float,
                      lookback_minutes: int, now: datetime) -> list[Signal]:
    """Signals for the posts that fire, or for the single most unusual one when none does."""
    engagement, reach = _reference(histograms, "engagement"), _reference(histograms, "followers")
    scored = []
    for post in posts:
        p_engagement = calibration.histogram_tail(engagement, velocity(post.engagement, post.since, now))
        p_reach = calibration.histogram_tail(reach, math.log1p(max(post.followers or 0, 0)))
        scored.append((combined_p(p_engagement, p_reach), p_reach, post.id, post))
    if not scored:
        return []
    scored.sort(key=lambda item: (item[0], item[1], item[2]))
    signals: list[Signal] = []
    for p_value, p_reach, _, post in scored:
        if signals and p_value > alpha:
            break  # the rest are less unusual still
        signals.append(Signal(
            detector="viral", window_minutes=lookback_minutes, window_start=post.since,
            observed=float(post.engagement), expected=round(math.expm1(calibration.histogram_median(engagement)), 3),
            p_value=p_value,
            threshold=alpha, fired=p_value <= alpha, post_ids=(post.id,),
            extra={"followers": post.followers, "p_reach": float(f"{p_reach:.4g}")},
        ))
    return signals
