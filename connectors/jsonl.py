"""Replay of a JSONL file of posts (backfills, demos, benchmarks).

Each line is one post in the `connectors.records.PostRecord` shape (as written by
`tools/make_replay.py`). The cursor is the byte offset after the last complete line consumed, so
a restart resumes exactly there and a file still being appended is read as it grows: a last line
without its newline is left for the next run.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import ClassVar

import httpx
from pydantic import Field

from connectors.base import SourceParams
from monitor.core.posts import Page
from connectors.http import MalformedPayload, SourceError
from connectors.records import post_from_line
from monitor.core.boundary import parse_each

log = logging.getLogger("flarewatch.connectors")


class JsonlParams(SourceParams):
    path: Path = Field(description="the .jsonl file to replay")
    lines_per_page: int = Field(default=1000, ge=1)
    max_pages: int = Field(default=100, ge=1)


def read_lines(path: Path, offset: int, limit: int) -> tuple[list[tuple[int, bytes]], int]:
    """Up to `limit` complete lines from `offset`: [(line start, bytes)] and the new offset."""
    lines: list[tuple[int, bytes]] = []
    with path.open("rb") as handle:
        handle.seek(offset)
        while len(lines) < limit:
            start = handle.tell()
            line = handle.readline()
            if not line.endswith(b"\n"):
                break  # end of file, or a line still being written
            lines.append((start, line))
            offset = handle.tell()
    return lines, offset


class JsonlReplay:
    kind: ClassVar[str] = "jsonl"
    mode: ClassVar[str] = "poll"
    params_model: ClassVar[type[JsonlParams]] = JsonlParams

    def __init__(self, *, source_name: str, query_terms: list[str], params: JsonlParams) -> None:
        self.source = source_name
        self.params = params

    async def pages(self, client: httpx.AsyncClient, cursor: str | None) -> AsyncIterator[Page]:
        offset = int(cursor) if cursor and cursor.isdigit() else 0
        path = self.params.path
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from None
        if offset > size:
            raise MalformedPayload(f"{path} is shorter ({size} bytes) than the stored cursor ({offset}); "
                                   "was it replaced? reset the source's cursor to replay it")
        for _ in range(self.params.max_pages):
            lines, new_offset = await asyncio.to_thread(read_lines, path, offset, self.params.lines_per_page)
            if not lines:
                return
            parsed = parse_each((line for _, line in lines),
                                lambda line: post_from_line(self.source, line) if line.strip() else None)
            for rejected in parsed.rejected:
                log.warning("skipping bad replay line", extra={
                    "source": self.source, "offset": lines[rejected.position][0], "error": rejected.reason})
            offset = new_offset
            yield Page(parsed.items, str(offset), len(parsed.rejected))
