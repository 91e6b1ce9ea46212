"""The incident rules both the daemon (`incidents`) and `backtest` follow, as plain functions.

- An incident opens on the first firing bucket while none is active.
- Severity = 1 + how many of `severity_excess_posts` the largest excess of negative posts beyond
  the firing threshold (what the background cannot explain, not merely above the mean) has
  reached since the incident opened; it never goes down. A rise alerts, so a burst that only just
  fires stays at severity 1 and costs one alert however big the brand.
- It closes once nothing fires and the widest window is back at or below the baseline: the burst
  is over, however long it lasted, and a burst that dips without returning to normal stays one
  incident.
"""
from __future__ import annotations


def severity_for(excess: float, levels: list[int]) -> int:
    return 1 + sum(1 for level in levels if excess >= level)


def back_to_baseline(fired: bool, widest_excess: float) -> bool:
    return not fired and widest_excess <= 0.0
