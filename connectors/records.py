"""Posts that arrive already in our shape: pushed to the webhook or replayed from a JSONL file.

One pydantic model checks both, so a replay file can be pushed as is and vice versa. Fields are
those written by `tools/make_replay.py`: id, created_at (with a time zone), author,
author_followers, text, lang, likes, reposts, replies, url, and optionally score and source
(the originating platform, kept in `raw`). Extra fields are kept in `raw` too.
"""
from __future__ import annotations

from datetime import timezone
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from monitor.core.posts import FetchedPost
from monitor.core.settings import describe_errors
from connectors.normal import InvalidItem, clean_post, tidy
from monitor.core.boundary import check_depth, decode_json


def _id_text(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


Count = Annotated[int, Field(ge=0, le=2**62)]


class PostRecord(BaseModel):
    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    id: Annotated[str, BeforeValidator(_id_text), Field(min_length=1, max_length=200)]
    text: Annotated[str, Field(min_length=1, max_length=100_000)]
    created_at: AwareDatetime
    author: Annotated[str, Field(min_length=1, max_length=300)] = "unknown"
    url: Annotated[str, Field(max_length=2_000)] | None = None
    author_followers: Count | None = None
    lang: Annotated[str, Field(max_length=20)] | None = None
    likes: Count = 0
    reposts: Count = 0
    replies: Count = 0
    score: Annotated[int, Field(ge=-(2**62), le=2**62)] | None = None
    source: str | None = None


def describe(exc: ValidationError) -> str:
    return describe_errors(exc, top="item")


def post_from_record(source: str, item: Any) -> FetchedPost:
    """A pushed or replayed post as a FetchedPost; `InvalidItem` says which field is wrong."""
    if not isinstance(item, dict):
        raise InvalidItem(f"expected an object, got {type(item).__name__}")
    check_depth(item)
    try:
        record = PostRecord.model_validate(item)
    except ValidationError as exc:
        raise InvalidItem(describe(exc)) from None
    text = tidy(record.text)
    if not text:
        raise InvalidItem("text: is blank")
    try:  # 9999-12-31T23:00-05:00 is valid ISO-8601 but past datetime.max in UTC
        created_at = record.created_at.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        raise InvalidItem(f"created_at: out of range: {record.created_at.isoformat()}") from None
    return clean_post(FetchedPost(
        source=source,
        external_id=record.id,
        text=text,
        created_at=created_at,
        author=record.author,
        url=record.url,
        author_followers=record.author_followers,
        lang=record.lang,
        likes=record.likes,
        reposts=record.reposts,
        replies=record.replies,
        score=record.score,
        raw=item,
    ))


def post_from_line(source: str, line: bytes | str) -> FetchedPost:
    """One JSONL line (a replay file, a backfill) as a FetchedPost; call it inside the item boundary."""
    return post_from_record(source, decode_json(line))
