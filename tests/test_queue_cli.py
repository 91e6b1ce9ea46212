"""`flarewatch users/queue/claim/release/answer/dismiss` against a real database file."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from alerts.interactivity import actor_for
from monitor.core.accounts import authenticate, user_for_token
from monitor.cli import app
from monitor.core.storage.db import make_engine, migrate, session_factory, transaction
from monitor.core.storage.schema import FlaggedPost, Incident, IncidentEvent, PostEvent
from tests.queue_seed import T0, add_flagged, add_incident

CliEnv = tuple[CliRunner, Path, sessionmaker[Session]]


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[CliEnv]:
    """The runner, a config file naming a database file, and sessions on that database for checks."""
    db = tmp_path / "cli.db"
    config = tmp_path / "flarewatch.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{db}"\n\n[web]\nclaim_minutes = 15\n', encoding="utf-8")
    engine = make_engine(f"sqlite:///{db}")
    migrate(engine)
    yield CliRunner(), config, session_factory(engine)
    engine.dispose()


def run(runner: CliRunner, config: Path, *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--config", str(config)], input=stdin)
    return result.exit_code, result.output


def test_users_add_list_and_token(cli: CliEnv) -> None:
    runner, config, sessions = cli
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
    with transaction(sessions) as session:
        assert authenticate(session, "alice", "correct horse battery") is not None
        assert authenticate(session, "alice", "wrong") is None
        assert authenticate(session, "bot", "") is None
        assert user_for_token(session, token.strip(), T0).name == "bot"


def test_queue_claim_answer_release_dismiss(cli: CliEnv) -> None:
    runner, config, sessions = cli
    with transaction(sessions) as session:
        first = add_flagged(session, urgency=4.0, text="acme ate my\nparcel", author="pat").id
        second = add_flagged(session, urgency=2.0).id
    for name in ("alice", "bob"):
        assert run(runner, config, "users", "add", name, "--no-password")[0] == 0
    code, out = run(runner, config, "queue")
    assert code == 0 and out.splitlines()[0] == "2 waiting"
    assert out.splitlines()[1] == "post\turgency\tstate\tbrand/source\tposted\tauthor: text"  # a header row
    row = out.splitlines()[2].split("\t")
    assert row[:4] == [str(first), "4.0", "open", "acme/acme-hook"] and row[4].endswith("ago")
    assert row[5] == "@pat: acme ate my parcel"
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


def test_users_set_changes_role_password_slack_id_and_status(cli: CliEnv) -> None:
    runner, config, sessions = cli
    for name, role in (("ada", "admin"), ("bob", "agent")):
        assert run(runner, config, "users", "add", name, "--role", role, "--password-stdin",
                   stdin="first password\n")[0] == 0
    assert run(runner, config, "users", "set", "bob", "--role", "manager", "--slack-id", "U0BOB0001") == (
        0, "updated bob\n")
    assert run(runner, config, "users", "list") == (0, "ada\tadmin\nbob\tmanager\tU0BOB0001\n")
    assert run(runner, config, "users", "set", "bob", "--password-stdin", stdin="second password\n")[0] == 0
    with transaction(sessions) as session:
        assert authenticate(session, "bob", "second password") is not None
        assert authenticate(session, "bob", "first password") is None
        assert actor_for(session, "U0BOB0001") == "bob"
    typed = "third password\nthird password\n"  # and its confirmation
    assert run(runner, config, "users", "set", "bob", "--prompt-password", stdin=typed)[0] == 0
    with transaction(sessions) as session:
        assert authenticate(session, "bob", "third password") is not None
    assert run(runner, config, "users", "set", "bob", "--no-password", "--slack-id", "")[0] == 0
    assert run(runner, config, "users", "list")[1].splitlines()[1] == "bob\tmanager no-password"
    for args, code, message in (
        (("bob",), 2, "nothing to change"),
        (("bob", "--no-password", "--password-stdin"), 2, "choose one of"),
        (("bob", "--deactivate", "--activate"), 2, "not both"),
        (("nobody", "--role", "agent"), 1, "no user named 'nobody'"),
        (("bob", "--role", ""), 1, "unknown role ''"),
        (("bob", "--slack-id", "bob"), 1, "not a Slack user id"),
        (("ada", "--role", "agent"), 1, "ada is the last active admin"),
        (("ada", "--deactivate", "--user", "ada"), 1, "ada is the last active admin"),
        (("bob", "--deactivate", "--user", "ghost"), 1, "no active user named 'ghost'"),
    ):
        got, out = run(runner, config, "users", "set", *args)
        assert got == code and message in out, (args, out)
    result = runner.invoke(app, ["users", "set", "bob", "--deactivate", "--config", str(config)],
                           env={"FLAREWATCH_USER": ""})
    assert result.exit_code == 2 and "--deactivate needs --user" in result.output
    assert run(runner, config, "users", "set", "ada", "--slack-id", "U0BOB0001")[0] == 0  # bob cleared his
    code, out = run(runner, config, "users", "set", "bob", "--slack-id", "U0BOB0001")
    assert code == 1 and "already belongs to ada" in out


def test_users_deactivate_releases_claims_and_tokens_can_be_revoked(cli: CliEnv) -> None:
    runner, config, sessions = cli
    with transaction(sessions) as session:
        incident_id = add_incident(session).id
        post_id = add_flagged(session, incident=session.get(Incident, incident_id)).id
    for name, role in (("ada", "admin"), ("bob", "agent")):
        assert run(runner, config, "users", "add", name, "--role", role, "--no-password")[0] == 0
    first = run(runner, config, "users", "token", "bob")[1].strip()
    second = run(runner, config, "users", "token", "bob", "--label", "crm sync")[1].strip()
    with transaction(sessions) as session:
        assert user_for_token(session, second, T0) is not None
    code, out = run(runner, config, "users", "tokens", "bob")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 2 and first not in out and second not in out
    assert lines[0].split("\t")[1:2] == ["cli"] and lines[0].endswith("never used")
    assert lines[1].split("\t")[1] == "crm sync" and "never used" not in lines[1]
    second_id = lines[1].split("\t")[0]
    assert run(runner, config, "users", "revoke", "bob", "--token-id", second_id) == (0, "revoked 1 token of bob\n")
    code, out = run(runner, config, "users", "revoke", "bob", "--token-id", second_id)
    assert code == 1 and f"bob has no API token {second_id}" in out
    assert run(runner, config, "users", "revoke", "bob")[0] == 2
    assert run(runner, config, "users", "revoke", "bob", "--all", "--token-id", "1")[0] == 2
    assert run(runner, config, "users", "tokens", "nobody")[0] == 1
    with transaction(sessions) as session:
        assert user_for_token(session, second, T0) is None and user_for_token(session, first, T0) is not None

    assert run(runner, config, "claim", str(post_id), "--user", "bob")[0] == 0
    assert run(runner, config, "users", "set", "bob", "--deactivate", "--user", "ada") == (
        0, f"updated bob; released posts {post_id}\n")
    assert run(runner, config, "users", "list")[1].splitlines()[1] == "bob\tagent no-password inactive"
    code, out = run(runner, config, "claim", str(post_id), "--user", "bob")
    assert code == 1 and "no active user named 'bob'" in out
    with transaction(sessions) as session:
        assert user_for_token(session, first, T0) is None
        assert session.get(FlaggedPost, post_id).state == "open"
        event = session.scalars(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id)
                                .order_by(IncidentEvent.id.desc())).first()
        assert (event.kind, event.actor) == ("post_released", "ada")
    assert run(runner, config, "users", "revoke", "bob", "--all") == (0, "revoked 1 token of bob\n")
    assert run(runner, config, "users", "revoke", "bob", "--all") == (0, "revoked 0 tokens of bob\n")
