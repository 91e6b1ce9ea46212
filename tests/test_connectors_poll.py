"""poll_source end to end: real database, real httpx, local server; resume after failure and restart."""
from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import func, select
from typer.testing import CliRunner

from monitor.daemon import steer_poll_job
from monitor.polling import poll_source
from monitor.core.sources import SourceExpectation, source_status
from monitor.core.clock import SimulatedClock
from monitor.config import BrandConfig, SourceConfig
from monitor.core.storage.schema import Post, Source
from tests.connectorkit import FAST, load
from tests.httpreplay import Reply, instant_sleep, replay_server  # noqa: F401

TAG = "/api/v1/timelines/tag/rstats"
START = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


def brand(*sources: SourceConfig, terms=("rstats",), exclude=()) -> BrandConfig:
    return BrandConfig(name="Acme", terms=list(terms), exclude=list(exclude), sources=list(sources))


def mastodon_source(server, name="masto") -> SourceConfig:
    return SourceConfig(name=name, kind="mastodon", params={"instances": [server.url], **FAST})


async def poll(sessions, b: BrandConfig, clock: SimulatedClock, index: int = 0):
    async with httpx.AsyncClient() as client:
        return await poll_source(sessions, b, b.sources[index], client, clock)


def row(sessions, name: str) -> Source:
    with sessions() as session:
        return session.get(Source, name)


def stored_ids(sessions) -> list[str]:
    with sessions() as session:
        return sorted(session.scalars(select(Post.external_id)))


async def test_resume_after_failure_and_restart_without_duplicates(sessions, replay_server, instant_sleep):
    statuses = load("mastodon", "timeline_tag_rstats_mastodon_social_anonymous_2025.json")
    s0, s1, s2, s3, s4 = statuses
    replay_server.route(TAG, Reply(200, [s1]), when=lambda r: r.param("min_id") == s2["id"])
    replay_server.route(TAG, Reply(500, "boom"), Reply(500, "boom"), Reply(500, "boom"), Reply(200, [s0, s1]),
                        when=lambda r: r.param("min_id") == s1["id"])
    replay_server.route(TAG, Reply(200, []), when=lambda r: r.param("min_id") == s0["id"])
    replay_server.route(TAG, Reply(200, [s2, s3, s4]))
    clock = SimulatedClock(START)
    b = brand(mastodon_source(replay_server))

    first = await poll(sessions, b, clock)  # a first poll: the newest page only
    assert first.ok and first.stored == 3 and first.pages == 1
    assert json.loads(row(sessions, "masto").cursor) == {f"{replay_server.url}|tag:rstats": s2["id"]}

    clock.advance(timedelta(minutes=1))
    second = await poll(sessions, b, clock)  # page 1 stored, then the instance fails
    assert not second.ok and second.stored == 1 and "HTTP 500" in second.error
    failed = row(sessions, "masto")
    assert failed.consecutive_failures == 1 and failed.last_error_at == clock.now() and "500" in failed.last_error
    assert json.loads(failed.cursor)[f"{replay_server.url}|tag:rstats"] == s1["id"]  # page 1's cursor kept

    clock.advance(timedelta(minutes=1))
    third = await poll(sessions, b, clock)  # a fresh connector resumes from the stored cursor
    assert third.ok and third.stored == 1 and third.already_seen == 1
    healed = row(sessions, "masto")
    assert healed.consecutive_failures == 0 and healed.last_success_at == clock.now()
    assert healed.posts_fetched == 5 and json.loads(healed.cursor)[f"{replay_server.url}|tag:rstats"] == s0["id"]
    assert stored_ids(sessions) == sorted(s["uri"] for s in statuses)
    assert [r.param("min_id") for r in replay_server.requests] == [
        None, s2["id"], s1["id"], s1["id"], s1["id"], s1["id"], s0["id"]]


async def test_one_failing_source_does_not_stop_another(sessions, replay_server, instant_sleep):
    replay_server.route("/api/v1/search_by_date", Reply(200, "<html>Service Unavailable</html>",
                                                        {"Content-Type": "text/html"}))
    replay_server.route(TAG, Reply(200, load("mastodon", "timeline_tag_rstats_mastodon_social_anonymous_2025.json")))
    hn = SourceConfig(name="hn", kind="hackernews", params={"base_url": replay_server.url + "/api/v1", **FAST})
    b = brand(hn, mastodon_source(replay_server))
    clock = SimulatedClock(START)
    async with httpx.AsyncClient() as client:
        bad, good = await asyncio.gather(*(poll_source(sessions, b, s, client, clock) for s in b.sources))
    assert not bad.ok and "MalformedPayload" in bad.error and good.ok and good.stored == 5
    assert row(sessions, "hn").cursor is None and row(sessions, "hn").consecutive_failures == 1
    assert row(sessions, "masto").posts_fetched == 5


async def test_rate_limited_run_keeps_cursor(sessions, replay_server, instant_sleep):
    replay_server.route(TAG, Reply(429, {"error": "Too many requests"}, {"Retry-After": "900"}))
    b = brand(mastodon_source(replay_server))
    result = await poll(sessions, b, SimulatedClock(START))
    assert result.rate_limited and not result.ok and row(sessions, "masto").cursor is None
    assert result.retry_after == pytest.approx(900, abs=1) and not result.auth_failed
    assert "max_wait_seconds" in row(sessions, "masto").last_error


async def _run_poll_job(sessions, b: BrandConfig, seconds: float) -> datetime | None:
    """The daemon's poll job (poll, then let the result steer it) on a 0.1 s interval for `seconds`;
    returns when the job would run next (None: paused)."""
    scheduler = AsyncIOScheduler(timezone="UTC", job_defaults={"max_instances": 1, "coalesce": True})
    source = b.sources[0]
    async with httpx.AsyncClient() as client:
        async def job() -> None:
            result = await poll_source(sessions, b, source, client, SimulatedClock(START))
            steer_poll_job(scheduler, "poll", 0.1, result)

        scheduler.add_job(job, "interval", seconds=0.1, id="poll", next_run_time=datetime.now().astimezone())
        scheduler.start()
        try:
            await asyncio.sleep(seconds)
            return scheduler.get_job("poll").next_run_time
        finally:
            scheduler.shutdown(wait=False)


async def test_a_source_told_to_wait_an_hour_is_not_polled_before(sessions, replay_server, instant_sleep):
    replay_server.route(TAG, Reply(429, {"error": "Too many requests"}, {"Retry-After": "3600"}))
    next_run = await _run_poll_job(sessions, brand(mastodon_source(replay_server)), 1.5)
    assert len(replay_server.requests_to(TAG)) == 1  # every 0.1 s otherwise
    wait = next_run - datetime.now().astimezone()
    assert timedelta(minutes=59) < wait <= timedelta(hours=1)


async def test_bad_credentials_pause_the_source(sessions, replay_server, instant_sleep):
    replay_server.route(TAG, Reply(401, {"error": "The access token is invalid"}))
    b = brand(mastodon_source(replay_server))
    next_run = await _run_poll_job(sessions, b, 1.0)
    assert len(replay_server.requests_to(TAG)) == 1
    assert next_run is None  # paused
    failed = row(sessions, "masto")
    assert failed.last_error.startswith("AuthFailed: HTTP 401")
    assert source_status(failed, SourceExpectation("poll", 60, None), START) == "needs_credentials"
    failed.last_error = "HttpError: HTTP 404"
    assert source_status(failed, SourceExpectation("poll", 60, None), START) == "failing"


async def test_failures_log_when_the_state_changes_not_every_run(sessions, replay_server, instant_sleep, caplog):
    replay_server.route(TAG, Reply(500, "boom"), Reply(500, "boom"), Reply(500, "boom"), Reply(500, "boom"),
                        Reply(200, load("mastodon", "timeline_tag_rstats_mastodon_social_anonymous_2025.json")))
    b = brand(mastodon_source(replay_server).model_copy(update={"params": {"instances": [replay_server.url],
                                                                           **FAST, "retries": 0}}))
    caplog.set_level(logging.DEBUG, logger="flarewatch.connectors")
    for _ in range(5):
        await poll(sessions, b, SimulatedClock(START))
    messages = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "flarewatch.connectors"
                and r.getMessage().startswith("source ")]
    assert [m for m in messages if m[0] >= logging.WARNING] == [(logging.WARNING, "source poll failed")]
    assert (logging.INFO, "source recovered") in messages
    assert sum(1 for m in messages if m[1] == "source still failing") == 3


async def test_exclusions_reposts_and_odd_characters(sessions, tmp_path):
    path = tmp_path / "posts.jsonl"
    base = {"created_at": "2026-11-23T10:00:00Z", "author": "u", "likes": 2, "reposts": 1, "replies": 0}
    lines = [
        {**base, "id": "a", "text": "Acme lost my parcel https://t.co/1"},
        {**base, "id": "b", "text": "acme  lost my parcel https://t.co/2"},  # an exact re-post
        {**base, "id": "c", "text": "Acme anvil review"},  # excluded
        {**base, "id": "d", "text": "nothing to see"},  # off topic
        {**base, "id": "e", "text": "#AcmeOutage again\x00", "tag": "\ud800\x00"},
        {**base, "id": "f", "text": "Acme \ud800"},  # not valid Unicode: rejected with a reason
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    source = SourceConfig(name="replay", kind="jsonl", params={"path": str(path)})
    b = brand(source, terms=["Acme"], exclude=["anvil"])
    result = await poll(sessions, b, SimulatedClock(START))
    assert result.ok and (result.stored, result.duplicates, result.off_topic, result.rejected) == (2, 1, 2, 1)
    with sessions() as session:
        original = session.scalar(select(Post).where(Post.external_id == "a"))
        assert original.reposts == 1 + 1 + 1 and original.likes == 4  # the re-post's signal is kept
        copy_ = session.scalar(select(Post).where(Post.external_id == "b"))
        assert copy_.duplicate_of == original.id
        odd = session.scalar(select(Post).where(Post.external_id == "e"))
        assert odd.text == "#AcmeOutage again" and odd.raw["tag"] == "\ud800\x00"
        assert session.scalar(select(func.count()).select_from(Post)) == 3
    assert row(sessions, "replay").items_rejected == 1


async def test_unexpected_exception_is_recorded_not_raised(sessions, tmp_path, monkeypatch):
    import connectors.jsonl

    def explode(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(connectors.jsonl, "read_lines", explode)
    path = tmp_path / "p.jsonl"
    path.write_text("", encoding="utf-8")
    b = brand(SourceConfig(name="replay", kind="jsonl", params={"path": str(path)}))
    result = await poll(sessions, b, SimulatedClock(START))
    assert not result.ok and "RuntimeError" in result.error and row(sessions, "replay").consecutive_failures == 1


async def test_sources_status_command(sqlite_url, tmp_path, replay_server, instant_sleep):
    from monitor.cli import app
    from monitor.core.storage.db import make_engine, migrate, session_factory

    engine = make_engine(sqlite_url)
    migrate(engine)
    sessions = session_factory(engine)
    replay_server.route(TAG, Reply(503, "down"))
    config = tmp_path / "c.toml"
    config.write_text(f"""
[database]
url = "{sqlite_url}"

[[brands]]
name = "Acme"
terms = ["rstats"]

[[brands.sources]]
name = "masto"
kind = "mastodon"
params = {{ instances = ["{replay_server.url}"], retries = 0 }}

[[brands.sources]]
name = "never"
kind = "hackernews"
""", encoding="utf-8")
    from monitor.config import load_config

    cfg = load_config(config)
    b, source = cfg.sources()[0]
    async with httpx.AsyncClient() as client:
        await poll_source(sessions, b, source, client, SimulatedClock(START))
    engine.dispose()
    result = CliRunner().invoke(app, ["sources", "status", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "masto" in result.output and "HTTP 503" in result.output and "never polled" in result.output
    assert "mastodon" in result.output and "hackernews" in result.output


def test_sources_status_on_a_new_database_and_an_unreachable_one(tmp_path):
    from monitor.cli import app

    config = tmp_path / "c.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "empty.db"}"\n'
                      '[[brands]]\nname = "Acme"\nterms = ["acme"]\n'
                      '[[brands.sources]]\nname = "acme-hn"\nkind = "hackernews"\n', encoding="utf-8")
    fresh = CliRunner().invoke(app, ["sources", "status", "--config", str(config)])
    assert fresh.exit_code == 0 and "acme-hn" in fresh.output and "never polled" in fresh.output
    down = tmp_path / "down.toml"
    down.write_text('[database]\nurl = "postgresql://nobody@127.0.0.1:1/none"\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["sources", "status", "--config", str(down)])
    assert result.exit_code == 1 and "cannot read sources from the database" in result.output
    bad = CliRunner().invoke(app, ["sources", "status", "--config", str(tmp_path / "missing.toml")])
    assert bad.exit_code == 2 and "file not found" in bad.output
