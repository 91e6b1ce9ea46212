"""The [alerts] configuration table: where alerts go and how they escalate."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class AlertSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    default_channel: str = "#alerts"
