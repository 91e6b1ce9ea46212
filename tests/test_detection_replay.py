"""`flarewatch backtest` and `flarewatch replay`: deterministic, and clear about bad input."""
from __future__ import annotations

import csv
import json
import random
from datetime import datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from monitor.cli import app
from monitor.config import BrandConfig, Config
from monitor.replay import read_posts, replay, write_incidents
from tests.detection_helpers import T0, KeywordScorer, daily_rate, write_stream

runner = CliRunner()


def _write_series(path: Path, spike_at: int) -> None:
    rng = random.Random(11)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "value"])
        for i in range(6 * 288):
            t = T0 + timedelta(minutes=5 * i)
            lam = daily_rate(t, 60) / 12 * (4 if spike_at <= i < spike_at + 6 else 1)
            value = sum(1 for _ in range(200) if rng.random() < lam / 200)
            writer.writerow([t.strftime("%Y-%m-%d %H:%M:%S"), value])


def test_backtest_writes_scores_and_alerts_and_is_deterministic(tmp_path: Path) -> None:
    series = tmp_path / "series.csv"
    spike = 5 * 288 + 120  # day 6, 10:00
    _write_series(series, spike)
    outputs = []
    for name in ("a.csv", "b.csv"):
        result = runner.invoke(app, ["backtest", "--series", str(series), "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        outputs.append((tmp_path / name).read_bytes())
    assert outputs[0] == outputs[1]
    rows = list(csv.DictReader((tmp_path / "a.csv").open()))
    assert list(rows[0]) == ["timestamp", "value", "anomaly_score", "alert"] and len(rows) == 6 * 288
    assert rows[0]["timestamp"] == "2026-03-02 00:00:00"  # the input's own timestamps, as given
    alerts = [i for i, r in enumerate(rows) if r["alert"] == "1"]
    assert any(spike <= i < spike + 3 for i in alerts)
    assert all(0 <= float(r["anomaly_score"]) <= 1 for r in rows)


def test_backtest_rejects_a_bad_series_naming_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,value\n2026-03-02 00:00:00,3\n2026-03-02 00:05:00,lots\n")
    result = runner.invoke(app, ["backtest", "--series", str(bad), "--out", str(tmp_path / "out.csv")])
    assert result.exit_code == 2 and "bad.csv:3" in result.output
    assert not (tmp_path / "out.csv").exists()


def test_replay_detects_the_crisis_and_gives_the_same_incidents_twice(tmp_path: Path) -> None:
    stream = tmp_path / "posts.jsonl"
    crisis = T0 + timedelta(hours=62)  # day 3, 14:00, near the daily peak, once volume and share alert
    write_stream(stream, seed=3, hours=66, crisis_at_hour=62)
    config = Config(brands=[BrandConfig(name="Acme", terms=["Acme"])])
    posts = read_posts(stream)
    runs = []
    for name in ("a.jsonl", "b.jsonl"):
        result = replay(posts, config, KeywordScorer(), step=timedelta(minutes=5))
        write_incidents(result.incidents, tmp_path / name)
        runs.append((tmp_path / name).read_bytes())
    assert runs[0] == runs[1]
    incidents = [json.loads(line) for line in runs[0].splitlines()]
    detected = [datetime.fromisoformat(i["detected_at"]) for i in incidents]
    # a slow complaint (6 posts in its first hour, 30 in two) against a two-day-old baseline
    assert any(crisis <= d <= crisis + timedelta(minutes=150) for d in detected), incidents
    assert not any(d < crisis for d in detected)  # no false alarm in the background before it
    caught = next(i for i in incidents if datetime.fromisoformat(i["detected_at"]) >= crisis)
    assert caught["brand"] == "Acme" and caught["started_at"] <= caught["detected_at"]
    assert caught["closed_at"] is not None and caught["events"][0]["kind"] == "opened"


def test_replay_skips_and_numbers_bad_lines_like_every_command(tmp_path: Path) -> None:
    """The README's rule: a bad line is reported as FILE:LINE and skipped, the rest is processed, exit 1."""
    stream = tmp_path / "posts.jsonl"
    stream.write_text('{"id": "1", "text": "Acme ok", "created_at": "2026-03-02T00:00:00Z"}\n{"id": "2", "text": ""}\n'
                      '[1, 2]\n')
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["replay", "--in", str(stream), "--out", str(out), "--brand", "Acme"])
    assert result.exit_code == 1, result.output
    assert "posts.jsonl:2: skipped: text" in result.output and "posts.jsonl:3: skipped" in result.output
    assert "1 posts" in result.output and out.exists()  # the good line was replayed
    only_bad = tmp_path / "bad.jsonl"
    only_bad.write_text("not json\n")
    result = runner.invoke(app, ["replay", "--in", str(only_bad), "--out", str(out), "--brand", "Acme"])
    assert result.exit_code == 2 and "no posts" in result.output  # nothing to replay: bad usage
