"""Untrusted text (post bodies, author names, URLs) on its way into Slack mrkdwn (and URLs into HTML).

Slack's only markup characters are `&`, `<` and `>`: every mention (`<!channel>`, `<!here>`,
`<!everyone>`, `<@U…>`, `<!subteam^S…>`) and every link (`<https://evil|https://good>`) lives inside
angle brackets, so escaping those three makes a post unable to ping anyone or disguise a link. Plain
`@here` is only a mention with `link_names=true`, which we never send; a word joiner after the `@`
keeps it inert even if someone turns that on. Truncation counts grapheme clusters (`regex`'s `\\X`),
so Chinese text, emoji with skin tones and flags, and combining accents are never cut in half.
"""
from __future__ import annotations

import re
from urllib.parse import urlsplit

import regex

ELLIPSIS = "…"
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_BROADCAST = re.compile(r"@(?=(here|channel|everyone)\b)", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_GRAPHEME = regex.compile(r"\X")


def escape_mrkdwn(text: str, limit: int | None = None) -> str:
    """Escape untrusted text for a mrkdwn field (or a message's `text`), at most `limit` characters.

    This is the one function every piece of post text goes through before it reaches Slack.
    """
    text = _BROADCAST.sub("@\u2060", _CONTROL.sub("", text))
    pieces = ["".join(_ESCAPES.get(ch, ch) for ch in g) for g in _GRAPHEME.findall(text)]
    return _fit(pieces, limit)


def truncate(text: str, limit: int) -> str:
    """Shorten text to at most `limit` characters on a grapheme boundary, marking the cut with an ellipsis."""
    return _fit(_GRAPHEME.findall(text), limit)


def _fit(pieces: list[str], limit: int | None) -> str:
    if limit is None or sum(map(len, pieces)) <= limit:
        return "".join(pieces)
    out: list[str] = []
    size = 0
    for piece in pieces:  # an escaped grapheme (e.g. "&amp;") is kept or dropped whole
        if size + len(piece) > limit - len(ELLIPSIS):
            break
        out.append(piece)
        size += len(piece)
    return "".join(out) + ELLIPSIS


def http_url(url: str | None) -> str | None:
    """The URL if it is http(s), else None: post URLs come from strangers and end up in an HTML href."""
    if not url:
        return None
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return None
    return url.strip() if scheme in ("http", "https") else None


def safe_url(url: str | None) -> str | None:
    """An http(s) URL usable inside `<url|label>`, or None for anything else (javascript:, relative, …)."""
    if not url:
        return None
    url = _CONTROL.sub("", url).strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or any(c.isspace() for c in url):
        return None
    # "|" would end the URL and start a label of the attacker's choosing.
    return "".join(_ESCAPES.get(ch, ch) for ch in url).replace("|", "%7C")


def link(url: str | None, label: str) -> str:
    """A mrkdwn link whose label we chose (escaped); plain escaped label when the URL is unsafe."""
    target = safe_url(url)
    label = escape_mrkdwn(label).replace("|", "\u2758")
    return f"<{target}|{label}>" if target else label


def strip_controls(text: str) -> str:
    """Remove control characters (terminal escape sequences included); keeps newlines and tabs."""
    return _CONTROL.sub("", text)
