"""The result every detector returns: what it saw, what it expected, and how surprising that is."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Signal:
    detector: str  # volume | share | viral
    window_minutes: int
    window_start: datetime
    observed: float
    expected: float
    p_value: float
    threshold: float  # the per-test level from the false-alarm budget; fired = p_value <= threshold
    fired: bool
    post_ids: tuple[int, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Identifies the test across ticks: detector and window, or the post for viral."""
        if self.detector == "viral":
            return f"viral:{self.post_ids[0]}"
        test = self.extra.get("test")
        return f"{self.detector}:{self.window_minutes}m" + (f":{test}" if test else "")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready numbers for incident events (rounded so timelines stay readable)."""
        return {
            "key": self.key, "detector": self.detector, "window_minutes": self.window_minutes,
            "window_start": self.window_start.isoformat(), "observed": round(self.observed, 3),
            "expected": round(self.expected, 3), "p_value": float(f"{self.p_value:.4g}"),
            "threshold": float(f"{self.threshold:.4g}"), "fired": self.fired,
            "post_ids": list(self.post_ids), **self.extra,
        }
