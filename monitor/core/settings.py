"""What every settings model shares: unknown keys are errors, and errors read as configuration errors."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ConfigError(Exception):
    """A configuration problem, already phrased for the person who wrote the file."""


class Strict(BaseModel):
    """Base for settings tables: a misspelt key is an error, not a silently ignored value."""

    model_config = ConfigDict(extra="forbid")
