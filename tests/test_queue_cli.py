"""`flarewatch users/queue/claim/release/answer/dismiss` against a real database file."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from monitor.accounts import authenticate, user_for_token
from monitor.cli import app
from monitor.storage.db import make_engine, migrate, session_factory, transaction
from monitor.storage.schema import FlaggedPost, PostEvent
from tests.queue_seed import T0, add_flagged


@pytest.fixture
def cli(tmp_path: Path) -> tuple[CliRunner, Path, str]:
    db = tmp_path / "cli.db"
    config = tmp_path / "flarewatch.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{db}"\n\n[web]\nclaim_minutes = 15\n', encoding="utf-8")
    return CliRunner(), config, f"sqlite:///{db}"


def run(runner: CliRunner, config: Path, *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--config", str(config)], input=stdin)
    return result.exit_code, result.output


def test_users_add_list_and_token(cli: tuple[CliRunner, Path, str]) -> None:
    runner, config, url = cli
    assert run(runner, config, "users", "add", "alice", "--role", "manager", "--password-stdin",
               stdin="correct horse battery\n") == (0, "added alice (manager)\n")
    code, out = run(runner, config, "users", "add", "alice", "--role", "agent", "--password-stdin", stdin="x" * 9)
    assert code == 1 and "already exists" in out
    code, out = run(runner, config, "users", "add", "bob", "--role", "boss", "--no-password")
    assert code == 1 and "unknown role" in out
    assert run(runner, config, "users", "add", "bot", "--role", "agent", "--no-password")[0] == 0
    assert run(runner, config, "users", "list") == (0, "alice\tmanager\nbot\tagent no-password\n")
    code, token = run(runner, config, "users", "token", "bot")
    assert code == 0 and token.startswith("fw_")
    engine = make_engine(url)
    with transaction(session_factory(engine)) as session:
        assert authenticate(session, "alice", "correct horse battery") is not None
        assert authenticate(session, "alice", "wrong") is None
        assert authenticate(session, "bot", "") is None
        assert user_for_token(session, token.strip(), T0).name == "bot"
    engine.dispose()


def test_queue_claim_answer_release_dismiss(cli: tuple[CliRunner, Path, str]) -> None:
    runner, config, url = cli
    engine = make_engine(url)
    migrate(engine)
    sessions = session_factory(engine)
    with transaction(sessions) as session:
        first = add_flagged(session, urgency=4.0, text="acme ate my\nparcel", author="pat").id
        second = add_flagged(session, urgency=2.0).id
    for name in ("alice", "bob"):
        assert run(runner, config, "users", "add", name, "--no-password")[0] == 0
    code, out = run(runner, config, "queue")
    assert code == 0 and out.splitlines()[0] == "2 waiting"
    assert out.splitlines()[1].startswith(f"{first}\t4.0\topen\tacme/acme-hook\t@pat: acme ate my parcel")
    assert run(runner, config, "claim", str(first), "--user", "alice") == (0, f"post {first} claimed\n")
    code, out = run(runner, config, "claim", str(first), "--user", "bob")
    assert code == 1 and "claimed by alice" in out
    code, out = run(runner, config, "claim", str(first), "--user", "nobody")
    assert code == 1 and "no active user" in out
    code, out = run(runner, config, "queue", "--mine", "--user", "alice")
    assert out.splitlines()[0] == "1 waiting" and "[alice]" in out
    code, out = run(runner, config, "answer", str(first), "--user", "alice", "--url", "ftp://x")
    assert code == 2 and "http(s)" in out
    assert run(runner, config, "answer", str(first), "--user", "alice", "--url", "https://s.example/r/1",
               "--note", "done")[0] == 0
    assert run(runner, config, "claim", str(second), "--user", "bob")[0] == 0
    assert run(runner, config, "release", str(second), "--user", "bob") == (0, f"post {second} released\n")
    assert run(runner, config, "dismiss", str(second), "--user", "alice", "--reason", "spam")[0] == 0
    code, out = run(runner, config, "dismiss", "999", "--user", "alice", "--reason", "spam")
    assert code == 1 and "not in the queue" in out
    assert run(runner, config, "queue")[1] == "0 waiting\n"
    with sessions() as session:
        assert session.get(FlaggedPost, first).answer_url == "https://s.example/r/1"
        kinds = session.scalars(select(PostEvent.kind).where(PostEvent.post_id == second).order_by(PostEvent.id)).all()
        assert kinds == ["flagged", "claimed", "released", "dismissed"]
    engine.dispose()
