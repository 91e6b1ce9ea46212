"""What every command needs: the --config option, loading it, and opening its database."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

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
