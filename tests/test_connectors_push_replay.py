"""The push webhook parser and the JSONL replay connector."""
from __future__ import annotations

import json
from datetime import datetime, timezone

from hypothesis import given, settings, strategies as st

from connectors.webhook import MAX_ITEMS, parse_pushed
from tests.connectorkit import drain, drain_until_error, make, posts_of

GOOD = {"id": "p1", "text": "Acme ate my order", "created_at": "2026-11-23T10:00:00+08:00", "author": "amy",
        "author_followers": 12, "lang": "en", "likes": 3, "reposts": 1, "replies": 0,
        "url": "https://example.invalid/p1", "source": "crm", "ticket": 991}


def test_parse_pushed_good_and_bad_items():
    body = json.dumps([
        GOOD,
        {**GOOD, "id": 42, "text": "  second  post "},
        {**GOOD, "id": "p3", "created_at": "2026-11-23T10:00:00"},  # no time zone
        {**GOOD, "id": "p4", "likes": -1},
        {**GOOD, "id": "p5", "text": ""},
        {"text": "no id", "created_at": "2026-11-23T10:00:00Z"},
        "not an object",
        {**GOOD, "id": "p8", "likes": "many"},
    ]).encode()
    posts, errors = parse_pushed("push-crm", body)
    assert [p.external_id for p in posts] == ["p1", "42"]
    first = posts[0]
    assert first.source == "push-crm" and first.created_at == datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)
    assert first.author_followers == 12 and first.raw["ticket"] == 991 and posts[1].text == "second post"
    assert [e.split(":")[0] for e in errors] == ["item 2", "item 3", "item 4", "item 5", "item 6", "item 7"]
    assert "created_at" in errors[0] and "timezone" in errors[0].lower()
    assert "likes" in errors[1] and "text" in errors[2] and "id" in errors[3]


def test_parse_pushed_body_errors():
    for body, needle in [(b"[{", "not valid JSON"), (b'{"a": 1}', "expected a JSON array"), (b"\xff\xfe", "JSON"),
                         (json.dumps([GOOD] * (MAX_ITEMS + 1)).encode(), "at most")]:
        posts, errors = parse_pushed("s", body)
        assert posts == [] and len(errors) == 1 and errors[0].startswith("body:") and needle in errors[0]
    posts, errors = parse_pushed("s", json.dumps({"posts": [GOOD]}).encode())
    assert len(posts) == 1 and errors == []


def test_pushed_text_with_nul_and_markup_is_kept_as_data():
    posts, _ = parse_pushed("s", json.dumps([{**GOOD, "text": "<script>x</script>\x00 Acme"}]).encode())
    assert posts[0].text == "<script>x</script> Acme"  # stored as data (escaped on output), NUL dropped


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_parse_pushed_never_raises(body: bytes):
    posts, errors = parse_pushed("s", body)
    assert isinstance(posts, list) and isinstance(errors, list)


def replay_lines(count: int) -> list[str]:
    return [json.dumps({**GOOD, "id": f"r-{i}", "created_at": f"2026-11-23T10:{i:02d}:00Z"}) for i in range(count)]


async def test_jsonl_pages_resume_and_growing_file(tmp_path):
    path = tmp_path / "posts.jsonl"
    lines = replay_lines(7)
    path.write_text("\n".join(lines[:5] + ["{broken", lines[5]]) + "\n" + lines[6], encoding="utf-8")
    connector = make("jsonl", ["acme"], path=str(path), lines_per_page=2, max_pages=2)
    pages = await drain(connector)
    assert [len(p.posts) for p in pages] == [2, 2]
    pages2 = await drain(make("jsonl", ["acme"], path=str(path), lines_per_page=2), pages[-1].cursor)
    assert [p.external_id for p in posts_of(pages2)] == ["r-4", "r-5"]  # r-6 has no newline yet
    assert sum(p.errors for p in pages2) == 1
    with path.open("a", encoding="utf-8") as handle:
        handle.write("\n")
    pages3 = await drain(make("jsonl", ["acme"], path=str(path)), pages2[-1].cursor)
    assert [p.external_id for p in posts_of(pages3)] == ["r-6"]
    assert await drain(make("jsonl", ["acme"], path=str(path)), pages3[-1].cursor) == []


async def test_jsonl_missing_or_replaced_file(tmp_path):
    _, error = await drain_until_error(make("jsonl", ["a"], path=str(tmp_path / "nope.jsonl")))
    assert error is not None and "nope.jsonl" in str(error)
    path = tmp_path / "short.jsonl"
    path.write_text(replay_lines(1)[0] + "\n", encoding="utf-8")
    _, error = await drain_until_error(make("jsonl", ["a"], path=str(path)), "99999")
    assert error is not None and "shorter" in str(error)
