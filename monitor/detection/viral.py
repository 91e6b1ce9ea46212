"""A single negative post with unusual reach, before the volume moves.

Each recent negative post is compared with the brand's own posts: z-scores of ln(1+followers)
and of ln(1+reposts+replies) against their learnt mean and spread (engagement is cumulative and
grows as re-posts are folded into the original by ingest, so a post that spreads crosses later
if not at once). The p-value is the smaller normal tail, doubled (Bonferroni over the two).
A post is one test, so the per-test level spends the budget over the negative posts of a week.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from monitor.detection.baseline import ReachStats
from monitor.detection.signals import Signal
from monitor.detection.stats import normal_tail


@dataclass(frozen=True)
class RecentPost:
    id: int
    created_at: datetime
    followers: int | None
    engagement: int  # reposts + replies


def check_viral_posts(posts: list[RecentPost], stats: ReachStats, alpha: float, lookback_minutes: int) -> list[Signal]:
    """Signals for the posts that fire, or for the single most unusual one when none does."""
    scored = []
    for post in posts:
        zf = (math.log1p(max(post.followers or 0, 0)) - stats.followers_mean) / stats.followers_sd
        ze = (math.log1p(max(post.engagement, 0)) - stats.engagement_mean) / stats.engagement_sd
        scored.append((max(zf, ze), post.id, post, zf, ze))
    if not scored:
        return []
    scored.sort(key=lambda item: (-item[0], item[1]))
    signals = []
    for z, _, post, zf, ze in scored:
        p_value = min(1.0, 2.0 * normal_tail(z))
        if signals and p_value > alpha:
            break  # the rest are less unusual still
        signals.append(Signal(
            detector="viral", window_minutes=lookback_minutes, window_start=post.created_at,
            observed=float(post.engagement), expected=math.expm1(stats.engagement_mean), p_value=p_value,
            threshold=alpha, fired=p_value <= alpha, post_ids=(post.id,),
            extra={"followers": post.followers, "z_followers": round(zf, 3), "z_engagement": round(ze, 3)},
        ))
    return signals
