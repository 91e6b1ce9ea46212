"""Helpers the per-platform normalisers share: HTML to text, times, counts, ids.

A normaliser turns one platform item (a dict from JSON) into a `FetchedPost`. It returns None for
items that are deliberately not posts for us (a deletion, a boost, an empty post) and raises
`InvalidItem` for items that are malformed; the connector counts and logs those and goes on.
"""
from __future__ import annotations

import dataclasses
import hashlib
import html
import json
import re
from datetime import datetime, timezone
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any

from monitor.core.boundary import InvalidItem

if TYPE_CHECKING:
    from monitor.core.posts import FetchedPost

__all__ = ["InvalidItem"]  # defined by the core boundary, re-exported for the normalisers

MAX_ID = 200  # posts.external_id is String(200)
MAX_COUNT = 2**62  # posts counters are BigInteger


class _TextExtractor(HTMLParser):
    _BREAKS = {"br", "p", "div", "li", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "tr"}
    _HIDDEN = {"script", "style", "template"}

    def __init__(self, images: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0
        self._images = images

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden += 1
        elif tag in self._BREAKS:
            self.parts.append("\n")
        elif tag == "img" and self._images:  # emoji images carry their meaning in alt text (Weibo "[偷笑]")
            alt = dict(attrs).get("alt")
            if alt:
                self.parts.append(alt)

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in self._BREAKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


_INLINE_SPACE = re.compile(r"[^\S\n]+")
_NEWLINES = re.compile(r"\s*\n\s*")


def tidy(text: str) -> str:
    """Collapse runs of spaces, keep single line breaks, drop NULs and surrounding space."""
    text = text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")
    return _NEWLINES.sub("\n", _INLINE_SPACE.sub(" ", text)).strip()


def html_to_text(markup: str, images: bool = True) -> str:
    """Visible text of an HTML fragment, entities unescaped, line breaks kept.

    `images` keeps each image's alt text, which is how Weibo and Mastodon write custom emoji.
    """
    if "<" not in markup and "&" not in markup:
        return tidy(markup)
    parser = _TextExtractor(images)
    try:
        parser.feed(markup)
        parser.close()
    except Exception:  # html.parser is lenient, but never let a fragment crash a page
        return tidy(html.unescape(re.sub(r"<[^>]*>", " ", markup)))
    return tidy("".join(parser.parts))


def get(data: Any, *keys: str | int) -> Any:
    """data[k1][k2]... or None when any step is missing or of the wrong type."""
    for key in keys:
        if isinstance(key, int):
            if not isinstance(data, list) or not -len(data) <= key < len(data):
                return None
        elif not isinstance(data, dict):
            return None
        data = data[key] if isinstance(key, int) else data.get(key)
    return data


def text_field(data: Any, *keys: str | int) -> str | None:
    value = get(data, *keys)
    return value if isinstance(value, str) else None


def require_dict(item: Any, what: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise InvalidItem(f"{what} is {type(item).__name__}, not an object")
    return item


def parse_time(value: Any, what: str = "created time") -> datetime:
    """An aware UTC datetime from ISO-8601 text or epoch seconds; `InvalidItem` otherwise."""
    if isinstance(value, bool) or value is None:
        raise InvalidItem(f"{what} missing")
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(float(value), tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise InvalidItem(f"{what} out of range: {value!r}") from None
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidItem(f"{what} is not an ISO-8601 time: {value[:60]!r}") from None
        if when.tzinfo is None:  # APIs that omit the zone mean UTC
            when = when.replace(tzinfo=timezone.utc)
        try:
            return when.astimezone(timezone.utc)
        except (OverflowError, ValueError):
            raise InvalidItem(f"{what} out of range: {value[:60]!r}") from None
    raise InvalidItem(f"{what} has type {type(value).__name__}")


_CN_UNITS = {"万": 10_000, "亿": 100_000_000}
_COUNT = re.compile(r"^\s*([0-9][0-9,]*(?:\.[0-9]+)?)\s*([万亿kKmM]?)\s*\+?\s*$")


def as_count(value: Any) -> int:
    """A non-negative engagement count from int, float or text like "1,234", "6336.5万", "100万+"."""
    if isinstance(value, bool) or value is None:
        return 0
    if isinstance(value, int):
        return min(max(value, 0), MAX_COUNT)
    if isinstance(value, float):
        return min(max(int(value), 0), MAX_COUNT) if value == value and abs(value) != float("inf") else 0
    if isinstance(value, str):
        match = _COUNT.match(value)
        if not match:
            return 0
        number = float(match.group(1).replace(",", ""))
        unit = match.group(2)
        scale = _CN_UNITS.get(unit) or {"k": 1_000, "m": 1_000_000}.get(unit.lower(), 1) if unit else 1
        return min(int(number * scale), MAX_COUNT)
    return 0


def optional_count(value: Any) -> int | None:
    return None if value is None or isinstance(value, bool) or not isinstance(value, (int, float, str)) else as_count(value)


def bounded_id(value: Any, what: str = "id") -> str:
    """A non-empty external id that fits the column; over-long ids are hashed, not cut."""
    if isinstance(value, bool) or value is None:
        raise InvalidItem(f"{what} missing")
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise InvalidItem(f"{what} missing or not text")
    text = value.strip()
    if len(text) > MAX_ID:
        return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return text


def short_text(value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value[:limit] or None


_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")  # NUL and lone surrogates: PostgreSQL text rejects them


def storable(value: str) -> str:
    return _UNSTORABLE.sub(lambda m: "" if m.group() == "\x00" else "\ufffd", value)


def clean_post(post: FetchedPost) -> FetchedPost:
    """The post with every text field storable, so one odd item can never poison a page's transaction.

    Ids are identity, so they are never rewritten: `nul\\0id` and `nulid` must stay two posts, and an
    id with characters no database column can hold is rejected instead. `raw` must be strict JSON
    (PostgreSQL refuses NaN), checked here, inside the item boundary, rather than at insert time.
    """
    if _UNSTORABLE.search(post.external_id):
        raise InvalidItem("id: contains NUL or an unpaired surrogate, which cannot be stored")
    try:
        json.dumps(post.raw, allow_nan=False)
    except (ValueError, TypeError) as exc:
        raise InvalidItem(f"cannot be stored as JSON: {exc}") from None
    if not any(value is not None and _UNSTORABLE.search(value) for value in (post.text, post.author, post.url, post.lang)):
        return post
    text = storable(post.text)
    if not text.strip():
        raise InvalidItem("text: nothing left once NUL is removed")
    return dataclasses.replace(post, text=text, author=storable(post.author).strip() or "unknown",
                               url=None if post.url is None else storable(post.url) or None,
                               lang=None if post.lang is None else storable(post.lang) or None)
