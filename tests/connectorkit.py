"""Helpers for connector tests: build a connector against a local server and drain its pages."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from monitor.core.posts import Page
from connectors.registry import build_connector

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FAST = {"retries": 2, "backoff_seconds": 0.01, "max_backoff_seconds": 0.05, "timeout_seconds": 5}


def make(kind: str, terms: list[str], source: str = "test-source", **params: Any) -> Any:
    return build_connector(kind, source, terms, params)


async def drain(connector: Any, cursor: str | None = None) -> list[Page]:
    """Every page one run yields (raises what the run raises)."""
    async with httpx.AsyncClient() as client:
        return [page async for page in connector.pages(client, cursor)]


async def drain_until_error(connector: Any, cursor: str | None = None) -> tuple[list[Page], Exception | None]:
    pages: list[Page] = []
    async with httpx.AsyncClient() as client:
        try:
            async for page in connector.pages(client, cursor):
                pages.append(page)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            return pages, exc
    return pages, None


def load(platform: str, name: str) -> Any:
    path = FIXTURES / platform / name
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return json.loads(path.read_text(encoding="utf-8"))


def posts_of(pages: list[Page]) -> list[Any]:
    return [post for page in pages for post in page.posts]
