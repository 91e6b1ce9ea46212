"""The [detection] configuration table."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DetectionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bucket_seconds: int = Field(default=60, gt=0)
    windows_minutes: list[int] = Field(default_factory=lambda: [5, 15, 60])
    false_alarms_per_week: float = Field(default=1.0, gt=0)
    quiet_minutes_to_close: int = Field(default=60, gt=0)
