"""The incident rules both the daemon (`incidents`) and `backtest` follow, as plain functions.

- An incident opens on the first firing bucket while none is active.
- Severity = 1 + how many of `severity_excess_posts` the largest excess of negative posts beyond
  the firing threshold (what the background cannot explain, not merely above the mean) has
  reached since the incident opened; it never goes down. A rise alerts, so a burst that only just
  fires stays at severity 1 and costs one alert however big the brand.
- It closes once nothing fires, the closing window (the widest of at most an hour) is back at or
  below the baseline and no firing minute is left inside it: the burst is over, however long it
  lasted, and a burst that dips without returning to normal stays one incident. (Without the
  last condition a viral-first crisis closed an hour after its post stopped firing, when the
  baseline learnt the crisis's first hour and the window's expectation jumped, and reopened as a
  second incident when the volume fired minutes later.) Longer windows detect slow surges; judging the end on
  them would keep an incident open for hours after the burst has stopped.
- "The baseline" there is the brand's calendar, not the activity-scaled expectation that decides
  firing: a launch that triples the other posts in mid-crisis raises that expectation threefold,
  which is right for not paging on a busy day but made the crisis look over, and it reopened as a
  second incident when the launch faded (2 of 20 seven-day replays with ordinary reach).
"""
from __future__ import annotations

from collections.abc import Sequence

CLOSING_WINDOW_MAX_MINUTES = 60


def closing_window(windows_minutes: Sequence[int]) -> int:
    """The window whose return to baseline closes an incident."""
    short = [w for w in windows_minutes if w <= CLOSING_WINDOW_MAX_MINUTES]
    return max(short) if short else min(windows_minutes)


def severity_for(excess: float, levels: list[int]) -> int:
    return 1 + sum(1 for level in levels if excess >= level)


def back_to_baseline(fired: bool, widest_excess: float, quiet_minutes: float, closing_minutes: int) -> bool:
    """Nothing fires, the closing window is at or below the baseline, and no firing minute is
    left inside it (`quiet_minutes` since the last signal): a window that still holds the burst
    is not back to normal, though its expectation may have just risen with the hour it learnt."""
    return not fired and widest_excess <= 0.0 and quiet_minutes >= closing_minutes
