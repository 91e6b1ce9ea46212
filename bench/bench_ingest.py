"""Ingest throughput: posts/s from a JSONL replay into the database through `poll_source`,
and the HTTP connector path (request, JSON decode, normalise) against a local replay server.

    python bench/bench_ingest.py                       # 20,000 synthetic posts, SQLite in a temp dir
    python bench/bench_ingest.py --posts 100000 --db postgresql://postgres@127.0.0.1:5432/bench
    python bench/bench_ingest.py --replay /tmp/replay1/posts.jsonl   # a make_replay.py stream

Posts are stored with brand matching and re-post folding on, exactly as the daemon does. The
synthetic stream repeats 5% of texts so the re-post path is exercised.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORDS = ("acme order delivery late refund support app crash love great terrible service again "
         "today why still broken thanks fast slow price update phone").split()


def synthetic(path: Path, count: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    texts: list[str] = []
    with path.open("w", encoding="utf-8") as handle:
        for i in range(count):
            if texts and rng.random() < 0.05:
                text = rng.choice(texts)
            else:
                text = "Acme " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 24))) + f" #{i}"
                texts.append(text)
            handle.write(json.dumps({
                "id": f"b-{i:08d}", "created_at": (start + timedelta(seconds=i * 3)).isoformat(),
                "author": f"user{rng.randrange(10**5)}", "author_followers": rng.randrange(10**4),
                "text": text, "lang": "en", "likes": rng.randrange(5), "reposts": rng.randrange(3), "replies": 0,
            }) + "\n")


async def bench_replay(db_url: str, path: Path, lines_per_page: int) -> dict[str, float]:
    import httpx

    from monitor.polling import poll_source
    from monitor.core.clock import SystemClock
    from monitor.config import BrandConfig, SourceConfig
    from monitor.core.storage.db import make_engine, migrate, session_factory

    engine = make_engine(db_url)
    migrate(engine)
    sessions = session_factory(engine)
    source = SourceConfig(name=f"bench-{int(time.time())}", kind="jsonl",
                          params={"path": str(path), "lines_per_page": lines_per_page, "max_pages": 10**6})
    brand = BrandConfig(name="Acme", terms=["acme"], sources=[source])
    async with httpx.AsyncClient() as client:
        started = time.perf_counter()
        result = await poll_source(sessions, brand, source, client, SystemClock())
        elapsed = time.perf_counter() - started
    engine.dispose()
    if not result.ok:
        raise SystemExit(f"replay failed: {result.error}")
    seen = result.stored + result.duplicates + result.off_topic + result.already_seen
    return {"posts": seen, "stored": result.stored, "duplicates": result.duplicates, "seconds": round(elapsed, 2),
            "posts_per_s": round(seen / elapsed), "ms_per_page": round(elapsed / max(result.pages, 1) * 1000, 1)}


async def bench_http(pages: int) -> dict[str, float]:
    """Mastodon pages of 40 statuses served locally: the cost of our HTTP + normalise path."""
    import httpx

    from connectors.registry import build_connector

    recorded = json.loads((ROOT / "tests" / "fixtures" / "mastodon" /
                           "timeline_tag_rstats_mastodon_social_anonymous_2025.json").read_text(encoding="utf-8"))
    statuses = [dict(recorded[i % len(recorded)], id=str(10**17 + i), uri=f"https://x/{i}") for i in range(40)]
    body = json.dumps(statuses).encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    connector = build_connector("mastodon", "bench", ["rstats"], {"instances": [url], "max_pages": pages})
    posts = 0
    async with httpx.AsyncClient() as client:
        started = time.perf_counter()
        async for page in connector.pages(client, json.dumps({f"{url}|tag:rstats": "1"})):
            posts += len(page.posts)
        elapsed = time.perf_counter() - started
    server.shutdown()
    return {"pages": pages, "posts": posts, "ms_per_page": round(elapsed / pages * 1000, 2),
            "posts_per_s": round(posts / elapsed)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=20_000)
    parser.add_argument("--replay", type=Path, help="a JSONL file to replay instead of synthetic posts")
    parser.add_argument("--db", help="database URL (default: SQLite in a temporary folder)")
    parser.add_argument("--lines-per-page", type=int, default=1000)
    parser.add_argument("--http-pages", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.replay or Path(tmp) / "posts.jsonl"
        if args.replay is None:
            synthetic(path, args.posts)
        db_url = args.db or f"sqlite:///{Path(tmp) / 'bench.db'}"
        replay = asyncio.run(bench_replay(db_url, path, args.lines_per_page))
    print(json.dumps({"replay_into_db": replay, "http_connector": asyncio.run(bench_http(args.http_pages))}, indent=2))


if __name__ == "__main__":
    main()
