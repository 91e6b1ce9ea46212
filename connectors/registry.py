"""Connector kinds by name, and validation of a source's `params` against its kind."""
from __future__ import annotations

from typing import Any, cast

from pydantic import ValidationError

from connectors.base import SOURCE_MODES, Connector, SourceParams
from connectors.builtin import BUILTIN
from monitor.core.settings import describe_errors


def _by_kind(classes: tuple[type, ...]) -> dict[str, type[Connector]]:
    known: dict[str, type[Connector]] = {}
    for cls in classes:
        kind = getattr(cls, "kind", None)
        if getattr(cls, "mode", None) not in SOURCE_MODES:
            raise TypeError(f"connector {kind!r} must declare mode as one of {SOURCE_MODES}")
        known[str(kind)] = cast("type[Connector]", cls)
    return known


CONNECTORS: dict[str, type[Connector]] = _by_kind(BUILTIN)


def connector_mode(kind: str) -> str:
    """poll | push | stream for a connector kind ("poll" for an unknown one: it has no other way in)."""
    cls = CONNECTORS.get(kind)
    return cls.mode if cls is not None else "poll"


def validate_source_params(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """Return the params with defaults filled in, or raise ValueError naming what is wrong."""
    if kind not in CONNECTORS:
        raise ValueError(f"unknown connector {kind!r}; expected one of: {', '.join(sorted(CONNECTORS))}")
    model: type[SourceParams] = CONNECTORS[kind].params_model
    try:
        return model.model_validate(params).model_dump()
    except ValidationError as exc:
        problems = describe_errors(exc, prefix="params.")
        raise ValueError(f"{kind} source: {problems}") from None


def build_connector(kind: str, source_name: str, query_terms: list[str], params: dict[str, Any]) -> Connector:
    """Instantiate a configured source: every connector takes these three keyword arguments."""
    cls = CONNECTORS[kind]
    return cls(
        source_name=source_name, query_terms=query_terms, params=cls.params_model.model_validate(params)
    )
