"""What every settings model shares: unknown keys are errors, and errors read as configuration errors;
an optional key written as `"${VAR:-}"` with the variable unset counts as not set."""
from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, SecretStr, ValidationError


class ConfigError(Exception):
    """A configuration problem, already phrased for the person who wrote the file."""


class Strict(BaseModel):
    """Base for settings tables: a misspelt key is an error, not a silently ignored value."""

    model_config = ConfigDict(extra="forbid")


def _blank_is_unset(value: object) -> object:
    return value if value else None


# Optional keys where "" means unset (`"${SMTP_PASSWORD:-}"` with the variable unset: no login).
OptionalText = Annotated[str | None, BeforeValidator(_blank_is_unset)]
OptionalSecret = Annotated[SecretStr | None, BeforeValidator(_blank_is_unset)]


def describe_errors(exc: ValidationError, *, prefix: str = "", top: str = "") -> str:
    """Each problem as `location: message`, joined by "; " (`top` names the whole value's location)."""
    return "; ".join(f"{prefix}{'.'.join(map(str, e['loc'])) or top}: {e['msg']}" for e in exc.errors(include_url=False))
