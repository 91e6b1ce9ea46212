"""Does a post mention the brand? Case-insensitive terms with exclusions, in any script.

* Latin-script terms match on word boundaries ("acme" does not match "acmeist", but Chinese
  characters next to it are a boundary: "Acme的客服" matches); the words of a
  multi-word term may be separated by any whitespace ("Acme  Corp", "acme\\ncorp").
* Hashtags and handles count when they start with the term, with the words run together:
  "#AcmeOutage", "@acme_support", "#AcmeCorp" all mention "Acme" / "Acme Corp".
* Terms in scripts written without spaces (Chinese, Japanese) match as substrings.
* Text and terms are compared after Unicode NFKC normalisation and case folding, so full-width
  "ＡＣＭＥ" and "ACME" match "acme".
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

_SPACELESS_CHARS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_SPACELESS = re.compile(f"[{_SPACELESS_CHARS}]")
# A word character that is not from a spaceless script: "Acme的客服" still mentions "Acme".
_WORD = rf"[^\W{_SPACELESS_CHARS}]"


def fold(text: str) -> str:
    """The form both sides are compared in."""
    return unicodedata.normalize("NFKC", text).casefold()


def _pattern(term: str) -> str:
    term = fold(term).strip()
    if _SPACELESS.search(term):
        return re.escape(term)
    words = term.split()
    phrase = r"\s+".join(re.escape(w) for w in words)
    options = [rf"(?<!{_WORD}){phrase}(?!{_WORD})"]
    joined = "".join(words).lstrip("#@")
    if joined and re.fullmatch(r"\w+", joined):  # only terms that can be written as a hashtag
        options.append(rf"(?<![\w#@])[#@]{re.escape(joined)}\w*")
    return "|".join(options)


def _compile(terms: Sequence[str]) -> re.Pattern[str] | None:
    kept = [t for t in terms if t.strip()]
    return re.compile("|".join(f"(?:{_pattern(t)})" for t in kept)) if kept else None


class BrandMatcher:
    def __init__(self, terms: Sequence[str], exclude: Sequence[str] = ()) -> None:
        include = _compile(terms)
        if include is None:
            raise ValueError("a brand needs at least one non-empty term")
        self._include = include
        self._exclude = _compile(exclude)

    def matches(self, text: str) -> bool:
        folded = fold(text)
        if not self._include.search(folded):
            return False
        return self._exclude is None or not self._exclude.search(folded)
