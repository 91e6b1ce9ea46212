"""What every settings model shares: unknown keys are errors, and errors read as configuration errors."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError


class ConfigError(Exception):
    """A configuration problem, already phrased for the person who wrote the file."""


class Strict(BaseModel):
    """Base for settings tables: a misspelt key is an error, not a silently ignored value."""

    model_config = ConfigDict(extra="forbid")


def describe_errors(exc: ValidationError, *, prefix: str = "", top: str = "") -> str:
    """Each problem as `location: message`, joined by "; " (`top` names the whole value's location)."""
    return "; ".join(f"{prefix}{'.'.join(map(str, e['loc'])) or top}: {e['msg']}" for e in exc.errors(include_url=False))
