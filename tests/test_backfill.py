"""`flarewatch backfill`: good lines stored once, bad lines reported by number, nothing else lost."""
from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select
from typer.testing import CliRunner

from monitor.cli import app
from monitor.core.storage.db import make_engine, session_factory
from monitor.core.storage.schema import Post, Source


def archive_config(tmp_path: Path) -> Path:
    """A config with one jsonl source, acme-archive, and its database at tmp_path/fw.db."""
    path = tmp_path / "c.toml"
    path.write_text(f"""
[database]
url = "sqlite:///{tmp_path / 'fw.db'}"
[[brands]]
name = "Acme"
terms = ["acme"]
[[brands.sources]]
name = "acme-archive"
kind = "jsonl"
params = {{ path = "{tmp_path / 'unused.jsonl'}" }}
""", encoding="utf-8")
    return path


def _line(i: int, text: str) -> str:
    return json.dumps({"id": f"old-{i}", "text": text, "created_at": f"2026-01-01T10:{i % 60:02d}:00Z",
                       "author": f"u{i}"}, ensure_ascii=False)


def test_backfill_stores_good_lines_reports_bad_ones_and_is_idempotent(tmp_path: Path) -> None:
    config = archive_config(tmp_path)
    lines = [_line(i, f"Acme order {i} arrived late") for i in range(1200)]
    lines[10] = '{"id": "broken", "text": '  # truncated JSON
    lines[20] = json.dumps({"id": "no-time", "text": "Acme"})  # missing created_at
    lines[30] = _line(30, "nothing about the brand")
    lines.append(_line(2000, "Acme的客服太差了"))
    (tmp_path / "old.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")

    first = CliRunner().invoke(app, ["backfill", str(tmp_path / "old.jsonl"), "--source", "acme-archive",
                                     "--config", str(config)])
    assert first.exit_code == 1, first.output  # some lines were rejected
    assert "1198 stored" in first.output and "1 not mentioning Acme" in first.output and "2 rejected" in first.output
    assert "old.jsonl:11:" in first.output and "old.jsonl:21:" in first.output

    again = CliRunner().invoke(app, ["backfill", str(tmp_path / "old.jsonl"), "--source", "acme-archive",
                                     "--config", str(config)])
    assert "0 stored" in again.output and "1198 already stored" in again.output

    engine = make_engine(f"sqlite:///{tmp_path / 'fw.db'}")
    with session_factory(engine)() as s:
        assert s.scalar(select(func.count(Post.id))) == 1198
        assert s.get(Source, "acme-archive").brand == "Acme"
    engine.dispose()


def test_backfill_refuses_an_unknown_source_or_missing_file(tmp_path: Path) -> None:
    config = archive_config(tmp_path)
    (tmp_path / "old.jsonl").write_text(_line(1, "Acme") + "\n", encoding="utf-8")
    unknown = CliRunner().invoke(app, ["backfill", str(tmp_path / "old.jsonl"), "--source", "nope", "--config", str(config)])
    assert unknown.exit_code == 2 and "acme-archive" in unknown.output
    missing = CliRunner().invoke(app, ["backfill", str(tmp_path / "none.jsonl"), "--source", "acme-archive",
                                       "--config", str(config)])
    assert missing.exit_code == 2 and "cannot read" in missing.output
