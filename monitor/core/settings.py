"""What every settings model shares: unknown keys are errors, and errors read as configuration errors;
an optional key written as `"${VAR:-}"` with the variable unset counts as not set."""
from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, SecretStr, ValidationError
from pydantic_core import ErrorDetails


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


def _location(loc: tuple[int | str, ...], top: str) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not part.startswith(("function-", "function_")):  # validator names are not the writer's keys
            out += f".{part}" if out else part
    return out or top


def _message(error: ErrorDetails) -> str:
    if error["type"] == "missing":
        return "is required but missing"
    if error["type"] == "extra_forbidden":
        return "is not a known setting (check the spelling)"
    given = error.get("input")
    shown = "" if given is None or isinstance(given, dict | list) else f" (got {_shown(given)})"
    return f"{error['msg']}{shown}"


def _shown(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_errors(exc: ValidationError, *, prefix: str = "", top: str = "(top level)", sep: str = "; ") -> str:
    """The one phrasing of validation errors (config files, connector params, pushed items, forms):
    each problem as `location: message`, joined by `sep`; `top` names the whole value's location."""
    return sep.join(f"{prefix}{_location(e['loc'], top)}: {_message(e)}" for e in exc.errors(include_url=False))
