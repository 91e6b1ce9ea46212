"""The one escaping function for untrusted text in Slack, and grapheme-safe truncation."""
from __future__ import annotations

import regex
import pytest
from hypothesis import given, settings, strategies as st

from monitor.core.escape import ELLIPSIS, escape_mrkdwn, link, safe_url, strip_controls, truncate
from tests.slack_server import MENTION

ATTACKS = [
    "<!channel>", "<!here>", "<!everyone>", "<!here|here>", "<@U0123ABCD>", "<@W0123ABCD|boss>",
    "<!subteam^S0123ABC>", "<!subteam^S0123ABC|@oncall>", "<#C0123ABC>", "<http://evil.example|http://good.example>",
    "<mailto:x@evil.example|support@acme.example>", "<!date^1392734382^{date_short}|Feb 18>",
    "&lt;!channel&gt;", "<<!channel>>", "<\u200b!channel>", "＜!channel＞", "A & B < C > D",
]


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").replace("@\u2060", "@")


@pytest.mark.parametrize("attack", ATTACKS)
def test_no_mention_or_link_survives(attack: str) -> None:
    escaped = escape_mrkdwn(f"hello {attack} world")
    assert "<" not in escaped and ">" not in escaped
    assert MENTION.search(escaped) is None
    assert _unescape(escaped) == f"hello {attack} world"  # shown exactly as written


def test_escapes_exactly_three_characters_in_order() -> None:
    assert escape_mrkdwn("a & b < c > d &amp; *bold* _it_ `code`") == \
        "a &amp; b &lt; c &gt; d &amp;amp; *bold* _it_ `code`"


@pytest.mark.parametrize("word", ["@here", "@channel", "@everyone", "@HERE"])
def test_plain_broadcast_words_are_neutralised(word: str) -> None:
    escaped = escape_mrkdwn(f"hey {word}!")
    assert word not in escaped and _unescape(escaped) == f"hey {word}!"
    assert escape_mrkdwn("mail me@heresy.example") == "mail me@heresy.example"


def test_truncation_keeps_chinese_and_emoji_whole() -> None:
    text = "退款太慢了😡👍🏽🇨🇳👨‍👩‍👧é"  # e + combining accent at the end
    graphemes = regex.findall(r"\X", text)
    for limit in range(1, len(text) + 2):
        cut = truncate(text, limit)
        assert len(cut) <= limit
        kept = cut[: -len(ELLIPSIS)] if cut.endswith(ELLIPSIS) and cut != text else cut
        assert regex.findall(r"\X", kept) == graphemes[: len(regex.findall(r"\X", kept))]
    assert truncate(text, 100) == text
    assert truncate(text, 8) == "退款太慢了😡…"  # the thumbs-up and its skin tone go together
    assert truncate(text, 9) == "退款太慢了😡👍🏽…"


def test_escaping_never_cuts_an_entity() -> None:
    assert escape_mrkdwn("a&b&c&d", 8) == "a&amp;b…"
    assert escape_mrkdwn("<<<<", 9) == "&lt;&lt;…"


@settings(max_examples=300, deadline=None)
@given(st.text(), st.integers(min_value=1, max_value=60))
def test_escape_properties(text: str, limit: int) -> None:
    full = escape_mrkdwn(text)
    assert "<" not in full and ">" not in full
    assert regex.sub(r"&(amp|lt|gt);", "", full).count("&") == 0
    assert _unescape(full).replace("\u2060", "") == strip_controls(text).replace("\u2060", "")
    cut = escape_mrkdwn(text, limit)
    assert len(cut) <= max(limit, len(ELLIPSIS))
    if cut != full:
        assert full.startswith(cut[: -len(ELLIPSIS)])


def test_links_are_ours_or_nothing() -> None:
    assert safe_url("javascript:alert(1)") is None
    assert safe_url("/relative") is None
    assert safe_url("https://a.example/x y") is None
    assert safe_url("https://a.example/p?a=1&b=<2>|evil") == "https://a.example/p?a=1&amp;b=&lt;2&gt;%7Cevil"
    assert link("https://bsky.app/profile/x/post/1", "open <post> | now") == \
        "<https://bsky.app/profile/x/post/1|open &lt;post&gt; \u2758 now>"
    assert link("ftp://x", "label") == "label"
