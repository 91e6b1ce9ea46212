"""Daemon configuration: a TOML file validated by pydantic.

Secrets never live in the file: a value such as "${SLACK_BOT_TOKEN}" is replaced from the
environment at load time ("${NAME:-default}" gives a default, possibly empty). Every error names
the file, the key path and what was expected, so `flarewatch config check` and the daemon print
the same message.
"""
from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

from limits import parse as parse_limit
from pydantic import Field, ValidationError, field_validator, model_validator

from alerts.settings import AlertSettings
from connectors.registry import connector_mode, validate_source_params
from models import ModelSettings
from monitor.core.settings import ConfigError, OptionalSecret, Strict, describe_errors
from monitor.core.storage.db import redact_url
from monitor.detection.settings import DetectionSettings

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config" / "default.toml"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


class SourceConfig(Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", description="unique id, used for cursors")
    kind: str
    interval_seconds: float = Field(default=60, gt=0)
    enabled: bool = True
    params: dict[str, Any] = Field(default_factory=dict)
    stale_after_minutes: float | None = Field(
        default=None, gt=0,
        description="show the source as stale after this long without a new post (push sources: default 60)")

    @model_validator(mode="after")
    def _check_params(self) -> SourceConfig:
        self.params = validate_source_params(self.kind, self.params)
        return self

    @property
    def mode(self) -> str:
        """poll | push | stream: push sources get no poll job (posts arrive at /api/ingest)."""
        return connector_mode(self.kind)


class BrandConfig(Strict):
    name: str = Field(min_length=1)
    terms: list[str] = Field(min_length=1, description="case-insensitive query terms")
    exclude: list[str] = Field(default_factory=list)
    languages: list[str] = Field(default_factory=lambda: ["en", "zh"])
    sources: list[SourceConfig] = Field(default_factory=list)
    # Detection sensitivity for this brand in plain terms; None: [detection] false_alarms_per_week.
    false_alarms_per_week: float | None = Field(default=None, gt=0)


class DatabaseConfig(Strict):
    url: str = "sqlite:///{data_dir}/flarewatch.db"

    def __repr_args__(self) -> Any:
        yield "url", redact_url(self.url)  # a printed config never shows the password


class WebConfig(Strict):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    ingest_token: OptionalSecret = None
    claim_minutes: float = Field(default=30, gt=0)
    # Signs the login cookie; unset or empty: one is generated once and kept in daemon.data_dir.
    session_secret: OptionalSecret = Field(default=None, min_length=16)
    session_hours: float = Field(default=12, gt=0)
    poll_seconds: float = Field(default=3, gt=0, description="how often open pages refresh the queue")
    metrics_token: OptionalSecret = Field(default=None, description="bearer token GET /metrics needs; unset: open")
    secure_cookies: bool = Field(default=False, description="send the login cookie over HTTPS only")
    # Wrong passwords allowed before logins are refused for a while (see monitor/web/throttle.py).
    login_failures_per_account: str = "10 per 15 minutes"
    login_failures_per_address: str = "50 per 15 minutes"

    @field_validator("login_failures_per_account", "login_failures_per_address")
    @classmethod
    def _limit(cls, value: str) -> str:
        try:
            parse_limit(value)
        except ValueError:
            raise ValueError(f"expected a rate such as '10 per 15 minutes', got {value!r}") from None
        return value


ROLES = ("poll", "score", "detect", "deliver", "web")


class DaemonConfig(Strict):
    data_dir: Path = Path("./var")
    # What this replica runs (`flarewatch run --role ...` overrides it); every stage is safe to run
    # on any number of replicas sharing one PostgreSQL database (docs/scaling.md).
    roles: list[str] = Field(default_factory=lambda: list(ROLES))
    # A dead replica's work (a source's polling, a brand's detection, delivery) moves to another
    # replica this long after its last renewal, plus one tick of that job.
    lease_seconds: float = Field(default=20, gt=0)
    # Scoring processes of this replica on PostgreSQL (1: scoring runs beside the daemon, not
    # competing with the web server for one interpreter); 0 runs it in a thread of the daemon
    # process, as SQLite always does (one file serialises writers anyway).
    score_workers: int = Field(default=1, ge=0, le=64)
    score_interval_seconds: float = Field(default=2, gt=0)
    detect_interval_seconds: float = Field(default=10, gt=0)
    escalate_interval_seconds: float = Field(default=15, gt=0)
    retention_days: int = Field(default=90, ge=1)
    log_level: str = "INFO"

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, roles: list[str]) -> list[str]:
        unknown = [r for r in roles if r not in ROLES]
        if unknown or not roles:
            raise ValueError(f"roles must be some of {', '.join(ROLES)}; got {roles!r}")
        return list(dict.fromkeys(roles))

    def lease_warnings(self, roles: list[str] | None = None) -> list[str]:
        """Leases that would lapse between the ticks that renew them (for the roles given, or this
        config's). Not an error: every leased write is fenced, so nothing is done twice, and one
        replica alone just takes its lease again; but with several replicas the job wanders from
        one to another at every tick. Shown by `flarewatch config check` and logged at start."""
        roles = roles if roles is not None else self.roles
        jobs = [("detect", "detection", "detect_interval_seconds", self.detect_interval_seconds),
                ("deliver", "escalation", "escalate_interval_seconds", self.escalate_interval_seconds)]
        return [f"daemon.lease_seconds ({self.lease_seconds:g}) is not longer than daemon.{name} "
                f"({interval:g}): {what}'s lease is renewed by its own tick, so it lapses between ticks "
                f"and, with several replicas, {what} moves from one to another; make lease_seconds "
                f"longer than the interval (the defaults are 20 and 10 / 15)"
                for role, what, name, interval in jobs if role in roles and self.lease_seconds <= interval]


class Config(Strict):
    daemon: DaemonConfig = Field(default_factory=DaemonConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    model: ModelSettings = Field(default_factory=ModelSettings)
    detection: DetectionSettings = Field(default_factory=DetectionSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    web: WebConfig = Field(default_factory=WebConfig)
    brands: list[BrandConfig] = Field(default_factory=list)

    @field_validator("brands")
    @classmethod
    def _unique_names(cls, brands: list[BrandConfig]) -> list[BrandConfig]:
        seen: set[str] = set()
        for brand in brands:
            for source in brand.sources:
                if source.name in seen:
                    raise ValueError(f"source name {source.name!r} is used twice; names must be unique")
                seen.add(source.name)
        return brands

    @property
    def database_url(self) -> str:
        return self.database.url.replace("{data_dir}", str(self.daemon.data_dir))

    def brand(self, name: str) -> BrandConfig:
        for brand in self.brands:
            if brand.name == name:
                return brand
        raise KeyError(name)

    def sources(self) -> list[tuple[BrandConfig, SourceConfig]]:
        return [(b, s) for b in self.brands for s in b.sources]


def _substitute_env(value: Any, path: str, env: dict[str, str], where: str) -> Any:
    if isinstance(value, dict):
        return {k: _substitute_env(v, f"{path}.{k}" if path else k, env, where) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute_env(v, f"{path}[{i}]", env, where) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(f"{where}: {path}: environment variable {name} is not set (the value is {value!r})")

    return _ENV_REF.sub(replace, value)


def parse_config(data: dict[str, Any], where: str = "<config>", env: dict[str, str] | None = None) -> Config:
    """Validate an already-parsed TOML document; `where` names the file in error messages."""
    resolved = _substitute_env(data, "", dict(os.environ) if env is None else env, where)
    try:
        return Config.model_validate(resolved)
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc, prefix=f"{where}: ", sep="\n")) from None


def load_config(path: str | Path | None = None, env: dict[str, str] | None = None) -> Config:
    """Load and validate a config file (the shipped default when `path` is None)."""
    file = Path(path) if path is not None else DEFAULT_CONFIG
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{file}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    config = parse_config(data, str(file), env)
    if not config.daemon.data_dir.is_absolute():
        config.daemon.data_dir = (Path.cwd() / config.daemon.data_dir).resolve()
    return config
