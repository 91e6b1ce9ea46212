"""What a complaint is about: key terms against the brand's usual posts (English and jieba-segmented Chinese)."""
from __future__ import annotations

from monitor.core.phrases import brand_words, key_terms, representative, terms_of

USUAL = ["Acme parcel arrived on time, thanks", "Love the new Acme app design", "Acme support was quick today",
         "Does the Acme router work with older phones?", "Acme 的快递很快，好评", "Acme 客服态度很好"] * 5
INCIDENT = ["The Acme update killed my router and support hung up on me.",
            "Acme firmware update bricked our router, three hours on hold!",
            "Same here: the Acme update killed my router.",
            "@Acme seriously, my router is dead after the update https://x.example/1",
            "Acme路由器更新后直接无法使用，客服也不管！", "Acme更新把我的路由器搞坏了，打客服没人接。"]


def test_terms_are_words_and_adjacent_phrases_without_the_brand_links_or_stop_words() -> None:
    skip = brand_words(["Acme"])
    found = terms_of("@Acme the Acme update killed my router! https://x.example/1 2024", skip)
    assert {"update", "killed", "router", "update killed"} <= found and "killed router" not in found  # "my" breaks it
    assert not found & {"acme", "the", "my", "2024", "https", "x.example"}
    assert "router update" not in terms_of("my router. Update tomorrow", skip)  # punctuation breaks a phrase
    chinese = terms_of("Acme路由器更新后直接无法使用", skip)
    assert "路由器" in chinese and "acme" not in chinese  # segmented by jieba, not per character


def test_the_rising_terms_come_first_and_usual_words_are_left_out() -> None:
    skip = brand_words(["Acme"])
    terms = key_terms(INCIDENT, USUAL, skip)
    words = [t.text for t in terms]
    assert words[0] in ("router", "update", "update killed") and "router" in " ".join(words)
    assert "路由器" in words or any("路由器" in w for w in words)
    assert "support" not in words  # usual posts mention support as often
    top = next(t for t in terms if "router" in t.text)
    assert top.incident_posts >= 3 and top.usual_share < 0.25
    assert key_terms([], USUAL, skip) == [] and key_terms(INCIDENT[:1], USUAL, skip) == []  # too few posts


def test_representative_posts_use_the_key_terms_and_do_not_repeat_each_other() -> None:
    skip = brand_words(["Acme"])
    terms = key_terms(INCIDENT, USUAL, skip)
    posts = [(i, text, 10) for i, text in enumerate(INCIDENT)] + [(99, INCIDENT[0], 5)]  # a copy with less reach
    chosen = representative(posts, terms, skip)
    assert len(chosen) == 3 and len(set(chosen)) == 3 and 99 not in chosen
