"""The one parsing boundary for everything that comes from outside: posts, lines, payloads, clicks.

Each item is parsed by `parse_each` (or `parse_one`), which turns *any* exception its parser raises
(a wrong field, but also `OverflowError` from an extreme date, `RecursionError` from deep nesting,
a bug) into a `Rejected` with a reason, so one bad item never takes its neighbours down with it.
Items nested deeper than `MAX_DEPTH` are rejected before their parser sees them: later steps
(validation, JSON columns) recurse and would fail outside the boundary.

`decode_json` is the one JSON decoder for outside bytes. It never raises `RecursionError`: a
document too deep for the C decoder is rebuilt iteratively (ijson events) with anything below
`MAX_DEPTH` replaced by a marker, so a deep item is one rejection and the rest of the array is kept.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import ijson

MAX_DEPTH = 100  # far deeper than any platform's item; far shallower than Python's recursion limit
MAX_REASON = 300

T = TypeVar("T")
R = TypeVar("R")


class InvalidItem(ValueError):
    """One item could not be understood; the rest of its batch or page is still used."""


class MalformedJson(ValueError):
    """Bytes that are not one JSON document (truncated, not UTF-8, HTML...)."""


@dataclass(frozen=True)
class Rejected:
    position: int  # index in the batch or page (0-based), or line number (1-based), as the caller counts
    reason: str


@dataclass(frozen=True)
class Parsed(Generic[R]):
    items: list[R]
    rejected: list[Rejected]


class _TooDeep:
    """Stands where a value nested deeper than MAX_DEPTH was (see `decode_json`)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<nested too deep>"


TOO_DEEP = _TooDeep()


def reason_for(exc: BaseException) -> str:
    """A one-line reason: the message of our own errors, the type too for anything unexpected."""
    if isinstance(exc, (InvalidItem, MalformedJson)):
        text = str(exc)
    elif isinstance(exc, RecursionError):
        text = f"nested more than {MAX_DEPTH} levels deep"
    else:
        text = f"{type(exc).__name__}: {exc}"
    text = " ".join(text.split())
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


def nesting_depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """Depth of lists and dicts in `value` (a scalar is 0), counted iteratively; stops past `limit`."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if node is TOO_DEEP:
            return limit + 1
        if isinstance(node, dict):
            children: Iterable[Any] = node.values()
        elif isinstance(node, (list, tuple)):
            children = node
        else:
            continue
        depth += 1
        if depth > limit:
            return depth
        deepest = max(deepest, depth)
        stack.extend((child, depth) for child in children)
    return deepest


def check_depth(value: Any) -> None:
    if nesting_depth(value) > MAX_DEPTH:
        raise InvalidItem(f"nested more than {MAX_DEPTH} levels deep")


def parse_one(parse: Callable[[T], R], raw: T, position: int = 0) -> R | Rejected:
    """`parse(raw)`, or a `Rejected` saying why not - whatever the parser raised."""
    try:
        check_depth(raw)
        return parse(raw)
    except Exception as exc:  # noqa: BLE001 - this is the boundary: any failure rejects this item only
        return Rejected(position, reason_for(exc))


def parse_each(items: Iterable[T], parse: Callable[[T], R | None], start: int = 0) -> Parsed[R]:
    """Parse every item; `None` from the parser is a deliberate skip (not a rejection)."""
    good: list[R] = []
    rejected: list[Rejected] = []
    for position, raw in enumerate(items, start):
        result = parse_one(parse, raw, position)
        if isinstance(result, Rejected):
            rejected.append(result)
        elif result is not None:
            good.append(result)
    return Parsed(good, rejected)


def decode_json(data: bytes | str) -> Any:
    """One JSON document from outside; `MalformedJson` if it is not one. Never raises RecursionError."""
    try:
        return json.loads(data)
    except RecursionError:
        return _decode_iteratively(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedJson(f"not valid JSON: {exc}") from None


# The pure-Python backend: the C one refuses integers beyond 64 bits, which json.loads accepts.
_IJSON = ijson.get_backend("python")


def _decode_iteratively(data: bytes) -> Any:
    """Build the document from ijson's events; values deeper than MAX_DEPTH become TOO_DEEP."""
    stack: list[Any] = []  # open containers
    keys: list[Any] = []  # for each open dict, the key being filled
    skipped = 0  # depth inside a value being replaced by TOO_DEEP
    result: Any = None
    done = False

    def put(value: Any) -> None:
        nonlocal result, done
        if not stack:
            result, done = value, True
        elif isinstance(stack[-1], list):
            stack[-1].append(value)
        else:
            stack[-1][keys[-1]] = value

    try:
        for event, value in _IJSON.basic_parse(data, use_float=True):
            if skipped:
                if event in ("start_map", "start_array"):
                    skipped += 1
                elif event in ("end_map", "end_array"):
                    skipped -= 1
                continue
            if event in ("start_map", "start_array"):
                if len(stack) >= MAX_DEPTH:
                    put(TOO_DEEP)
                    skipped = 1
                    continue
                container: Any = {} if event == "start_map" else []
                put(container)
                stack.append(container)
                if event == "start_map":
                    keys.append(None)
            elif event in ("end_map", "end_array"):
                closed = stack.pop()
                if isinstance(closed, dict):
                    keys.pop()
            elif event == "map_key":
                keys[-1] = value
            else:
                put(value)
    except ijson.JSONError as exc:
        raise MalformedJson(f"not valid JSON: {str(exc).splitlines()[0]}") from None
    if not done:
        raise MalformedJson("not valid JSON: empty document")
    return result
