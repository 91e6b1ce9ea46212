"""Does a post mention the brand? Case-insensitive terms with exclusions, in any script.

Latin-script terms match on word boundaries ("acme" does not match "acmeist"); terms in scripts
written without spaces (Chinese, Japanese) match as substrings.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

_SPACELESS = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def _pattern(term: str) -> str:
    escaped = re.escape(term.strip())
    if _SPACELESS.search(term):
        return escaped
    return rf"(?<!\w){escaped}(?!\w)"


class BrandMatcher:
    def __init__(self, terms: Sequence[str], exclude: Sequence[str] = ()) -> None:
        if not any(t.strip() for t in terms):
            raise ValueError("a brand needs at least one non-empty term")
        self._include = re.compile("|".join(_pattern(t) for t in terms if t.strip()), re.IGNORECASE)
        kept = [t for t in exclude if t.strip()]
        self._exclude = re.compile("|".join(_pattern(t) for t in kept), re.IGNORECASE) if kept else None

    def matches(self, text: str) -> bool:
        if not self._include.search(text):
            return False
        return self._exclude is None or not self._exclude.search(text)
