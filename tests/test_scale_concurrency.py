"""Work shared between concurrent writers on one database: pushes, scorers (both databases).

Replicas in subprocesses are in tests/test_replicas.py; these tests race threads of one process,
which is enough to show that the SQL itself (upserts, SKIP LOCKED) keeps every post once.
"""
from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import httpx
from sqlalchemy import func, select

from monitor.core.posts import FetchedPost
from monitor.detection import aggregates
from monitor.core.ingest import store_posts
from monitor.pipeline import score_pending
from monitor.core.storage.db import transaction
from monitor.core.storage.schema import Post, Score, Source
from tests.detection_helpers import T0, KeywordScorer
from tests.web_fixtures import WebEnv, web  # noqa: F401


def test_the_same_batch_pushed_by_many_clients_at_once_is_stored_once_and_never_fails(web: WebEnv) -> None:  # noqa: F811
    """Issue 17 #6: concurrent duplicate pushes answer `already_seen` instead of 500."""
    shared = {"Authorization": "Bearer shared-ingest-token"}
    batches = [[{"id": f"r{round_}-{i}", "text": f"acme parcel {round_} {i} {'late' if i % 2 else 'ok'}",
                 "created_at": "2026-07-04T11:59:00Z", "author": f"a{i}"} for i in range(15)]
               + [{"id": f"r{round_}-copy", "text": f"acme parcel {round_} 1 late", "created_at": "2026-07-04T11:59:05Z",
                   "author": "someone-else"}] for round_ in range(4)]

    async def race() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=web.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            out: list[httpx.Response] = []
            for batch in batches:  # eight clients push the same batch at once, four times over
                out += await asyncio.gather(*[client.post("/api/ingest/acme-hook", json=batch, headers=shared)
                                              for _ in range(8)])
            return out

    responses = asyncio.run(race())
    assert [r.status_code for r in responses] == [200] * 32, [r.text for r in responses if r.status_code != 200][:2]
    bodies = [r.json() for r in responses]
    assert sum(b["stored"] for b in bodies) == 4 * 15 and sum(b["duplicates"] for b in bodies) == 4
    assert sum(b["already_seen"] for b in bodies) == 4 * 7 * 16
    with web.sessions() as s:
        assert s.scalar(select(func.count(Post.id))) == 4 * 16
        assert s.get(Source, "acme-hook").posts_fetched == 4 * 16  # counters added in SQL: none lost
        originals = {p.text: p for p in s.scalars(select(Post).where(Post.duplicate_of.is_(None)))}
        assert originals["acme parcel 0 1 late"].reposts == 1  # the copy folded in once


def _posts(n: int, offset: int = 0) -> list[FetchedPost]:
    return [FetchedPost(source=f"src-{i % 3}", external_id=str(offset + i),
                        text=f"Acme order {offset + i} {'broken' if i % 4 == 0 else 'fine'}",
                        created_at=T0 + timedelta(seconds=offset + i), author=f"u{i}") for i in range(n)]


def test_concurrent_scorers_and_ingest_score_and_count_every_post_once(sessions) -> None:
    """Four scorer threads (each its own connection) race each other and a writer: disjoint batches."""
    total, pages = 1200, 6
    stop = threading.Event()
    errors: list[BaseException] = []
    done_per_scorer = [0] * 4

    def ingest() -> None:
        for page in range(pages):
            with transaction(sessions) as session:
                store_posts(session, "Acme", None, _posts(total // pages, page * (total // pages)), T0)
            # re-posts by others of already stored texts count with their original's verdict
            with transaction(sessions) as session:
                store_posts(session, "Acme", None, [FetchedPost(
                    source="src-0", external_id=f"copy-{page}", text=f"Acme order {page * 10} fine",
                    created_at=T0 + timedelta(seconds=page), author="copier")], T0)

    def scorer(index: int) -> None:
        try:
            model = KeywordScorer()
            while not stop.is_set():
                done = score_pending(sessions, model, T0, limit=32)
                done_per_scorer[index] += done
                if not done:
                    stop.wait(0.01)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=scorer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    ingest()
    with sessions() as s:
        expected = s.scalar(select(func.count(Post.id)))
    deadline = threading.Event()
    for _ in range(600):
        with sessions() as s:
            if s.scalar(select(func.count(Score.id))) == expected:
                break
        deadline.wait(0.05)
    stop.set()
    for t in threads:
        t.join(10)
    assert not errors, errors  # no unique-key collision: no two scorers ever held the same post
    with sessions() as s:
        assert expected == total + pages
        assert s.scalar(select(func.count(Score.id))) == expected
        assert s.scalar(select(func.count(func.distinct(Score.post_id)))) == expected
        assert s.scalar(select(func.count(Post.id)).where(Post.pending)) == 0
        stored, recount = aggregates.stored(s, "Acme"), aggregates.recount(s, "Acme")
    assert sum(done_per_scorer) == expected
    assert [(b.source, b.start, b.volume, b.negative) for b in stored] == [
        (b.source, b.start, b.volume, b.negative) for b in recount]
    assert sum(b.volume for b in stored) == expected
