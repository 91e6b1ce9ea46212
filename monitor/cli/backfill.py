"""`flarewatch backfill`: load a JSONL file of past posts into a configured source.

Lines are validated one by one (the same record shape as the webhook and the replay connector);
a bad line is reported with its number and skipped, and every good line is stored, in batches of
one transaction each. The daemon scores and aggregates them like any fetched post.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from monitor.cli.common import BadLines, ConfigOption, ProgressReport, open_store

BATCH = 500


def backfill_command(
    file: Annotated[Path, typer.Argument(help="JSONL file: one post per line (id, text, created_at, author, ...)")],
    source: Annotated[str, typer.Option("--source", "-s", help="the configured source the posts belong to")],
    config: ConfigOption = None,
) -> None:
    """Store past posts from a JSONL file under a configured source, with a progress bar."""
    from monitor.core.posts import FetchedPost
    from monitor.core.brands import BrandMatcher
    from connectors.records import post_from_line
    from monitor.core.boundary import Rejected, parse_one
    from monitor.core.clock import SystemClock
    from monitor.core.ingest import ensure_source, store_posts
    from monitor.core.storage.db import transaction

    try:
        size, handle = file.stat().st_size, file.open("rb")
    except OSError as exc:
        typer.echo(f"cannot read {file}: {exc.strerror}", err=True)
        raise typer.Exit(2) from None
    with open_store(config) as (cfg, sessions), handle:
        match = next(((b, s) for b, s in cfg.sources() if s.name == source), None)
        if match is None:
            known = ", ".join(s.name for _, s in cfg.sources()) or "none"
            typer.echo(f"no source named {source!r} in the configuration (configured: {known})", err=True)
            raise typer.Exit(2)
        brand, configured = match
        matcher, clock = BrandMatcher(brand.terms, brand.exclude), SystemClock()
        stored = duplicates = seen = off_topic = 0
        bad = BadLines(file)

        def flush(batch: list[FetchedPost]) -> None:
            nonlocal stored, duplicates, seen, off_topic
            with transaction(sessions) as session:
                ensure_source(session, configured.name, brand.name, configured.kind)
                result = store_posts(session, brand.name, matcher, batch, clock.now())
            stored, duplicates = stored + result.stored, duplicates + result.duplicates
            seen, off_topic = seen + result.already_seen, off_topic + result.off_topic
            batch.clear()

        batch: list[FetchedPost] = []
        with ProgressReport("backfill", "bytes") as progress:
            progress.update(0, size)
            for number, raw in enumerate(handle, start=1):
                progress.advance(len(raw))
                if not raw.strip():
                    continue
                post = parse_one(lambda line: post_from_line(configured.name, line), raw, number)
                if isinstance(post, Rejected):
                    bad.add(post.position, post.reason)
                else:
                    batch.append(post)
                if len(batch) >= BATCH:
                    flush(batch)
            flush(batch)
    typer.echo(f"{stored} stored, {duplicates} re-posts folded, {seen} already stored, "
               f"{off_topic} not mentioning {brand.name}, {bad.count} rejected")
    bad.exit_if_any()
