"""What every command needs: the --config option, loading it, and opening its database."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from monitor.config import Config

ConfigOption = Annotated[
    Optional[Path],
    typer.Option("--config", "-c", help="Configuration file (default: the shipped config/default.toml)."),
]


def load_or_exit(path: Path | None) -> Config:
    """Load the configuration or print why not and exit with status 2."""
    from monitor.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        typer.echo(f"configuration error:\n{exc}", err=True)
        raise typer.Exit(2) from None


@contextmanager
def open_store(path: Path | None) -> Iterator[tuple[Config, sessionmaker[Session]]]:
    """The configuration and a session factory on its (migrated) database."""
    from monitor.core.storage.db import make_engine, migrate, session_factory

    config = load_or_exit(path)
    engine = make_engine(config.database_url)
    try:
        migrate(engine)
        yield config, session_factory(engine)
    finally:
        engine.dispose()


# -- the rules every command follows for bad input lines, progress and exit codes (README "Command line") --

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2  # 1: it ran but something failed (bad lines included); 2: bad usage/config
EXIT_CANNOT_START = 3  # `run` / `web`: the web port is taken (another flarewatch running?)
SHOWN_BAD_LINES = 10


class BadLines:
    """Input lines a command skipped: each reported as `FILE:LINE: why`, the rest still processed.

    A command that skipped any exits with status 1 once it has done the rest (`exit_if_any`)."""

    def __init__(self, path: Path, shown: int = SHOWN_BAD_LINES) -> None:
        self.path, self.shown, self.count = path, shown, 0

    def add(self, number: int, reason: object) -> None:
        self.count += 1
        if self.count <= self.shown:
            typer.echo(f"{self.path}:{number}: skipped: {reason}", err=True)
        elif self.count == self.shown + 1:
            typer.echo(f"{self.path}: more bad lines; only the first {self.shown} are shown", err=True)

    def exit_if_any(self) -> None:
        if self.count:
            typer.echo(f"{self.path}: {self.count} bad line(s) skipped", err=True)
            raise typer.Exit(EXIT_FAILED)


class ProgressReport:
    """Progress on stderr: a bar on a terminal; elsewhere (redirected to a file, a CI log, a service) one
    line every `every` seconds and one at the end, so a long run is never silent."""

    def __init__(self, label: str, unit: str, every: float = 10.0, enabled: bool = True,
                 terminal: bool | None = None) -> None:
        import sys
        import time

        self.label, self.unit, self.every, self.enabled = label, unit, every, enabled
        self.terminal = sys.stderr.isatty() if terminal is None else terminal
        self._clock = time.monotonic
        self._start = self._last = self._clock()
        self.done = 0.0
        self.total: float | None = None
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> ProgressReport:
        if self.enabled and self.terminal:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn(self.label), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                                 TimeElapsedColumn(), TimeRemainingColumn(), transient=True,
                                 console=Console(stderr=True))
            self._bar.__enter__()
            self._task = self._bar.add_task(self.label, total=None)
        return self

    def update(self, done: float, total: float | None = None) -> None:
        self.done, self.total = done, total if total is not None else self.total
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=self.total)
        elif self._clock() - self._last >= self.every:
            self._line()

    def advance(self, amount: float) -> None:
        self.update(self.done + amount)

    def _line(self) -> None:
        self._last = self._clock()
        share = f" ({self.done / self.total:.0%})" if self.total else ""
        of = f"/{self.total:,.0f}" if self.total else ""
        typer.echo(f"{self.label}: {self.done:,.0f}{of} {self.unit}{share}, {self._last - self._start:.0f} s", err=True)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
        elif self.enabled and exc[0] is None:
            self._line()
