"""The [detection] configuration table (documented in config/README.md, section "Detection")."""
from __future__ import annotations

from typing import Literal, Protocol

from pydantic import Field, field_validator

from monitor.core.settings import Strict

Detector = Literal["volume", "share", "viral"]
DETECTORS: tuple[Detector, ...] = ("volume", "share", "viral")


class DetectionSettings(Strict):
    # Aggregates are per minute; the field exists so a config that states it stays valid.
    bucket_seconds: Literal[60] = 60
    # Short windows catch a sudden burst early; three hours catch a surge that builds over an
    # afternoon (its spread is learnt from the last hours' totals, not assumed from an hour's).
    windows_minutes: list[int] = Field(default_factory=lambda: [5, 15, 60, 180])
    detectors: list[Detector] = Field(default_factory=lambda: list(DETECTORS))
    # Plain-terms sensitivity: how many alerts (openings and severity rises) a week the brand
    # accepts from ordinary background (per brand override: [[brands]] false_alarms_per_week).
    false_alarms_per_week: float = Field(default=1.0, gt=0)
    min_negative_posts: int = Field(default=3, ge=1)
    # Between-window variation of the negative share, as a beta prior's weight in posts: the share
    # test counts n posts as at most about this many independent ones.
    share_concentration: float = Field(default=50.0, gt=0)
    viral_lookback_minutes: int = Field(default=60, gt=0)
    # Severity = 1 + how many of these the incident's excess of negative posts has reached.
    severity_excess_posts: list[int] = Field(default_factory=lambda: [10, 50, 200])
    baseline_memory_weeks: float = Field(default=4.0, ge=1)
    # Cold start: the prior rate of a brand with no history, worth one hour of data.
    cold_start_posts_per_hour: float = Field(default=2.0, gt=0)
    # Volume and share tests wait until this many hours are learnt (viral works from the start):
    # before a whole day has been seen, the daily rhythm reads as a surge, and the calibration, which
    # starts after that day, needs a day of the brand's own surprises to set the alert level.
    warmup_hours: int = Field(default=48, ge=0)
    link_posts_max: int = Field(default=500, ge=1)
    flag_posts: int = Field(default=5, ge=0)

    @field_validator("windows_minutes")
    @classmethod
    def _windows(cls, windows: list[int]) -> list[int]:
        if not windows:
            raise ValueError("at least one window is needed")
        if any(w < 1 or w > 1440 for w in windows):
            raise ValueError("windows must be between 1 and 1440 minutes")
        return sorted(set(windows))

    @field_validator("severity_excess_posts")
    @classmethod
    def _severity(cls, levels: list[int]) -> list[int]:
        if any(b <= a for a, b in zip(levels, levels[1:])) or any(v < 1 for v in levels):
            raise ValueError("severity levels must be positive and increasing")
        return levels

    @field_validator("detectors")
    @classmethod
    def _detectors(cls, detectors: list[Detector]) -> list[Detector]:
        if not detectors:
            raise ValueError("enable at least one detector")
        return sorted(set(detectors))


class BrandRules(Protocol):
    """What detection reads of one configured brand (`monitor.config.BrandConfig` is one)."""

    name: str
    terms: list[str]  # what the brand is called: reports leave these out of its complaint themes
    # None: the [detection] false_alarms_per_week.
    false_alarms_per_week: float | None
