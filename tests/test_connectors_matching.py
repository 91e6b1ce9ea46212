"""BrandMatcher: word boundaries, hashtags and handles, exclusions, Chinese, Unicode forms."""
from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings, strategies as st

from monitor.core.brands import BrandMatcher

ACME = BrandMatcher(["Acme", "Acme Corp", "艾克米"], exclude=["acme anvil", "艾克米游戏"])


@pytest.mark.parametrize("text, expected", [
    ("I love acme", True),
    ("ACME is down again", True),
    ("acmeist art movement", False),
    ("preacme", False),
    ("#AcmeOutage today", True),
    ("thanks @acme_support", True),
    ("#acmecorp rules", True),
    ("acme\n  corp", True),
    ("ＡＣＭＥ full-width", True),
    ("我讨厌艾克米的服务", True),
    ("Acme的客服太差了", True),  # Chinese characters beside a Latin term are a boundary
    ("刚买的Acme耳机就坏了", True),
    ("艾克米游戏很好玩", False),  # excluded
    ("the Acme Anvil broke", False),  # excluded, case-insensitive
    ("nothing here", False),
    ("", False),
])
def test_examples(text, expected):
    assert ACME.matches(text) is expected


def test_needs_a_term():
    with pytest.raises(ValueError):
        BrandMatcher(["  ", ""])


letters = st.characters(categories=["Ll", "Lu"], max_codepoint=0x24F).filter(
    lambda c: unicodedata.normalize("NFKC", c) == c  # e.g. "Ŀ" is "L·" after NFKC, not a letter
    and len({c.casefold(), c.upper().casefold(), c.lower().casefold()}) == 1  # not "ı"/"İ", whose cases differ
    and len(c.casefold()) == 1)
words = st.text(alphabet=letters, min_size=2, max_size=10)


@settings(max_examples=150, deadline=None)
@given(term=words, before=st.text(max_size=30), after=st.text(max_size=30))
def test_a_term_between_spaces_always_matches_any_case(term, before, after):
    matcher = BrandMatcher([term])
    assert matcher.matches(f"{before} {term.upper()} {after}")
    assert matcher.matches(f"{before} #{term.lower()}x {after}")


@settings(max_examples=150, deadline=None)
@given(term=words, text=st.text(max_size=60))
def test_exclusion_wins_and_never_crashes(term, text):
    assert BrandMatcher([term], exclude=[term]).matches(text) is False
    BrandMatcher([term, "(", "*", "\\"]).matches(text)  # regex metacharacters are literal
