"""Commands for staff who live in a terminal: accounts, the queue, and serving the web app alone.

Every command takes `--config FILE` (default: the shipped config) and opens the database it names,
migrating it first, so they work on a fresh install and beside a running daemon.
"""
from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from monitor.cli.common import ConfigOption, open_store

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from monitor.config import Config

UserOption = Annotated[str, typer.Option("--user", "-u", envvar="FLAREWATCH_USER", help="who is acting")]

users_app = typer.Typer(help="Staff accounts and API tokens.", no_args_is_help=True)


@contextmanager
def _database(path: Path | None) -> Iterator[tuple[Config, Session]]:
    """The config and one transaction on its database (committed when the command succeeds)."""
    from monitor.core.storage.db import transaction

    with open_store(path) as (config, sessions), transaction(sessions) as session:
        yield config, session


def _now():  # noqa: ANN202 - a datetime; kept lazy like the other imports
    from monitor.core.clock import SystemClock

    return SystemClock().now()


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _known_user(session: Session, name: str) -> None:
    from monitor.core.accounts import get_user

    user = get_user(session, name)
    if user is None or not user.active:
        raise _fail(f"no active user named {name!r}; add one with `flarewatch users add`")


@users_app.command("add")
def users_add(
    name: str,
    role: Annotated[str, typer.Option("--role", "-r", help="agent, manager or admin")] = "agent",
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read the password from stdin")] = False,
    no_password: Annotated[bool, typer.Option("--no-password", help="API tokens only, no page login")] = False,
    config: ConfigOption = None,
) -> None:
    """Add a staff account."""
    from monitor.core.accounts import AccountError, create_user

    password: str | None = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif not no_password:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    with _database(config) as (_, session):
        try:
            create_user(session, name, role, password, _now())
        except AccountError as exc:
            raise _fail(str(exc)) from None
    typer.echo(f"added {name} ({role})")


@users_app.command("list")
def users_list(config: ConfigOption = None) -> None:
    """List staff accounts (name, role, flags, Slack id)."""
    from monitor.core.accounts import list_users

    with _database(config) as (_, session):
        for user in list_users(session):
            flags = ("" if user.password_hash else " no-password") + ("" if user.active else " inactive")
            slack = f"\t{user.slack_user_id}" if user.slack_user_id else ""
            typer.echo(f"{user.name}\t{user.role}{flags}{slack}")


@users_app.command("set")
def users_set(
    name: str,
    role: Annotated[Optional[str], typer.Option("--role", "-r", help="agent, manager or admin")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read a new password from stdin")] = False,
    prompt_password: Annotated[bool, typer.Option("--prompt-password", help="ask for a new password")] = False,
    no_password: Annotated[bool, typer.Option("--no-password", help="turn page login off (API tokens only)")] = False,
    slack_id: Annotated[Optional[str], typer.Option("--slack-id", help='Slack user id (U…); "" clears it')] = None,
    deactivate: Annotated[bool, typer.Option("--deactivate", help="a leaver: no login, tokens or Slack; "
                                                                  "their claims go back to the queue")] = False,
    activate: Annotated[bool, typer.Option("--activate", help="undo --deactivate")] = False,
    user: Annotated[Optional[str], typer.Option("--user", "-u", envvar="FLAREWATCH_USER",
                                                help="who is acting (needed by --deactivate)")] = None,
    config: ConfigOption = None,
) -> None:
    """Change a staff account: role, password, Slack id, or deactivate a leaver."""
    from monitor.core.accounts import KEEP, AccountError, Keep, update_user

    if password_stdin + prompt_password + no_password > 1:
        raise _fail("choose one of --password-stdin, --prompt-password and --no-password", 2)
    if deactivate and activate:
        raise _fail("choose --deactivate or --activate, not both", 2)
    if deactivate and not user:
        raise _fail("--deactivate needs --user (or FLAREWATCH_USER): who gives their claims back", 2)
    if not (role is not None or password_stdin or prompt_password or no_password or slack_id is not None or deactivate
            or activate):
        raise _fail("nothing to change; see `flarewatch users set --help`", 2)
    password: str | None | Keep = KEEP
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif prompt_password:
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    elif no_password:
        password = None
    with _database(config) as (_, session):
        if user:
            _known_user(session, user)
        try:
            # Only deactivating records an actor (on the released posts), and it needs --user.
            changed = update_user(session, name, _now(), actor=user or "cli", role=KEEP if role is None else role,
                                  password=password, active=True if activate else False if deactivate else KEEP,
                                  slack_user_id=KEEP if slack_id is None else slack_id)
        except AccountError as exc:
            raise _fail(str(exc)) from None
    released = f"; released posts {', '.join(map(str, changed.released))}" if changed.released else ""
    typer.echo(f"updated {name}{released}")


@users_app.command("tokens")
def users_tokens(name: str, config: ConfigOption = None) -> None:
    """List a user's API tokens: id, label, created, last used (the tokens themselves are not kept)."""
    from monitor.core.accounts import AccountError, list_tokens

    with _database(config) as (_, session):
        try:
            tokens = list_tokens(session, name)
        except AccountError as exc:
            raise _fail(str(exc)) from None
    for token in tokens:
        used = f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never used"
        typer.echo(f"{token.id}\t{token.label or '-'}\tcreated {token.created_at:%Y-%m-%d %H:%M}\t{used}")


@users_app.command("revoke")
def users_revoke(
    name: str,
    token_id: Annotated[Optional[int], typer.Option("--token-id", help="the id from `users tokens NAME`")] = None,
    all_tokens: Annotated[bool, typer.Option("--all", help="every token of the user")] = False,
    config: ConfigOption = None,
) -> None:
    """Revoke API tokens: requests carrying them are refused from now on."""
    from monitor.core.accounts import AccountError, revoke_all_tokens, revoke_token

    if (token_id is None) == (not all_tokens):
        raise _fail("give --token-id N or --all", 2)
    with _database(config) as (_, session):
        try:
            if token_id is not None:
                revoke_token(session, name, token_id)
                count = 1
            else:
                count = revoke_all_tokens(session, name)
        except AccountError as exc:
            raise _fail(str(exc)) from None
    typer.echo(f"revoked {count} token{'' if count == 1 else 's'} of {name}")


@users_app.command("token")
def users_token(name: str, label: Annotated[str, typer.Option(help="what the token is for")] = "cli",
                config: ConfigOption = None) -> None:
    """Issue an API token for a user; it is printed once and stored only as a hash."""
    from monitor.core.accounts import get_user, issue_token

    with _database(config) as (_, session):
        user = get_user(session, name)
        if user is None:
            raise _fail(f"no user named {name!r}")
        token = issue_token(session, user, label, _now())
    typer.echo(token)


def queue_command(
    brand: Annotated[Optional[str], typer.Option(help="only this brand")] = None,
    mine: Annotated[bool, typer.Option("--mine", help="only posts --user holds")] = False,
    user: Annotated[Optional[str], typer.Option("--user", "-u", envvar="FLAREWATCH_USER")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 30,
    config: ConfigOption = None,
) -> None:
    """Show the flagged-post queue, most urgent first."""
    from monitor.core import queue
    from monitor.core.terminal import plain

    if mine and not user:
        raise _fail("--mine needs --user (or FLAREWATCH_USER)", 2)
    now = _now()
    with _database(config) as (_, session):
        items, total = queue.list_queue(session, queue.QueueFilters(brand=brand, mine=user if mine else None),
                                        queue.PageRequest(limit, 0), now)
        shown = f" (showing the first {len(items)}; --limit shows more)" if total > len(items) else ""
        typer.echo(f"{total} waiting{shown}")
        if items:
            typer.echo("post\turgency\tstate\tbrand/source\tposted\tauthor: text")
        for item in items:
            state = item.state_at(now)
            holder = f" [{plain(item.flag.claimed_by or '')}]" if state == "claimed" else ""
            text = plain(" ".join(item.post.text.split()))[:100]  # strangers' text: no escape sequences, no BEL
            age = int((now - item.post.created_at).total_seconds() // 60)
            posted = f"{age} min ago" if age < 120 else f"{age // 60} h ago"
            typer.echo(f"{item.post.id}\t{item.flag.urgency:.1f}\t{state}{holder}\t"
                       f"{plain(item.post.brand)}/{plain(item.post.source)}\t{posted}"
                       f"\t@{plain(item.post.author)}: {text}")


def _act(config: Path | None, user: str, action: str, post_id: int, run) -> None:  # noqa: ANN001
    from monitor.core.queue import QueueError

    with _database(config) as (cfg, session):
        _known_user(session, user)
        try:
            run(cfg, session, _now())
        except QueueError as exc:
            raise _fail(str(exc)) from None
    typer.echo(f"post {post_id} {action}")


def claim_command(post_id: int, user: UserOption, config: ConfigOption = None) -> None:
    """Claim a post: it is yours for web.claim_minutes."""
    from monitor.core import queue

    def run(cfg, session, now) -> None:  # noqa: ANN001
        if not queue.claim(session, post_id, user, now, cfg.web.claim_minutes):
            raise queue.explain(session, post_id, user, now)

    _act(config, user, "claimed", post_id, run)


def release_command(post_id: int, user: UserOption, config: ConfigOption = None) -> None:
    """Give a post you hold back to the queue."""
    from monitor.core import queue

    _act(config, user, "released", post_id, lambda cfg, s, now: queue.release(s, post_id, user, now))


def answer_command(
    post_id: int, user: UserOption,
    url: Annotated[str, typer.Option("--url", help="the URL of your reply")],
    note: Annotated[Optional[str], typer.Option("--note")] = None,
    config: ConfigOption = None,
) -> None:
    """Mark a post answered, with the URL of the reply."""
    from monitor.core import queue
    from monitor.core.escape import http_url

    if http_url(url) is None:
        raise _fail("--url must be an http(s) URL", 2)
    _act(config, user, "answered", post_id, lambda cfg, s, now: queue.answer(s, post_id, user, url, note, now))


def dismiss_command(
    post_id: int, user: UserOption,
    reason: Annotated[str, typer.Option("--reason", help="why it needs no answer")],
    config: ConfigOption = None,
) -> None:
    """Take a post out of the queue without answering it."""
    from monitor.core import queue

    if not reason.strip():
        raise _fail("--reason must not be empty", 2)
    _act(config, user, "dismissed", post_id, lambda cfg, s, now: queue.dismiss(s, post_id, user, reason, now))


def web_command(
    config: ConfigOption = None,
    host: Annotated[Optional[str], typer.Option(help="default: web.host")] = None,
    port: Annotated[Optional[int], typer.Option(help="default: web.port")] = None,
) -> None:
    """Serve the web pages and the API alone (without the daemon's jobs)."""
    import uvicorn

    from monitor.cli.common import EXIT_CANNOT_START
    from monitor.core.clock import SystemClock
    from monitor.web.app import PortInUse, bind_socket, create_app

    with open_store(config) as (cfg, sessions):
        app = create_app(cfg, sessions, SystemClock())
        where, number = host or cfg.web.host, port if port is not None else cfg.web.port
        try:
            sock = bind_socket(where, number)
        except PortInUse as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(EXIT_CANNOT_START) from None
        typer.echo(f"flarewatch web: http://{where}:{number}/ (Ctrl-C stops it)", err=True)
        with sock:
            uvicorn.run(app, fd=sock.fileno(), log_level="info")


def mount(app: typer.Typer) -> None:
    """Add these commands to the root `flarewatch` app."""
    app.add_typer(users_app, name="users", help="Staff accounts and API tokens.")
    app.command("queue")(queue_command)
    app.command("claim")(claim_command)
    app.command("release")(release_command)
    app.command("answer")(answer_command)
    app.command("dismiss")(dismiss_command)
    app.command("web")(web_command)
