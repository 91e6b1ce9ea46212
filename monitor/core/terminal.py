"""Untrusted text on its way to a terminal (or a Markdown file someone will `cat`).

Post text and author names are written by strangers. Control characters in them (ESC sequences
that move the cursor, retitle the window or hide text; BEL; C1 controls) and bidirectional
overrides (which make text read differently from what it is) are removed. Line breaks and tabs are
kept only where the caller's format allows them.
"""
from __future__ import annotations

import re

_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_CONTROLS_AND_BREAKS = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def plain(text: object, *, keep_lines: bool = False) -> str:
    """`text` without control characters; with `keep_lines`, newlines and tabs stay."""
    return (_CONTROLS if keep_lines else _CONTROLS_AND_BREAKS).sub("", str(text))
