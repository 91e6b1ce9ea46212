"""Configuration errors name the file, the key and what was expected; the CLI and daemon refuse them."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from monitor.config import DEFAULT_CONFIG, ConfigError, load_config

GOOD_BRAND = """
[[brands]]
name = "Acme"
terms = ["acme", "爱克美"]
"""


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "flarewatch.toml"
    path.write_text(body, encoding="utf-8")
    return path


def error_for(tmp_path: Path, body: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, body), env=env or {})
    return str(caught.value)


def test_the_shipped_default_config_is_valid() -> None:
    config = load_config(DEFAULT_CONFIG, env={})
    assert config.brands, "the default config should monitor an example brand"
    assert config.alerts.slack_bot_token in (None, ""), "no token set: console alerts"
    assert config.database_url.startswith("sqlite:///") and "{data_dir}" not in config.database_url


def test_missing_required_key_names_file_and_key(tmp_path: Path) -> None:
    message = error_for(tmp_path, '[[brands]]\nname = "Acme"\n')
    assert "flarewatch.toml" in message and "brands[0].terms" in message and "required" in message


def test_wrong_type_says_what_was_expected(tmp_path: Path) -> None:
    message = error_for(tmp_path, '[web]\nport = "eighty"\n' + GOOD_BRAND)
    assert "web.port" in message and "integer" in message and "eighty" in message


def test_a_rate_that_is_not_one_says_what_is_expected(tmp_path: Path) -> None:
    message = error_for(tmp_path, '[web]\nlogin_failures_per_account = "lots"\n' + GOOD_BRAND)
    assert "web.login_failures_per_account" in message and "10 per 15 minutes" in message and "lots" in message


def test_unknown_key_is_an_error_not_silently_ignored(tmp_path: Path) -> None:
    message = error_for(tmp_path, "[daemon]\nlog_levle = 'DEBUG'\n" + GOOD_BRAND)
    assert "daemon.log_levle" in message and "not a known setting" in message


def test_unknown_connector_lists_the_known_ones(tmp_path: Path) -> None:
    body = GOOD_BRAND + '[[brands.sources]]\nname = "x1"\nkind = "myspace"\n'
    message = error_for(tmp_path, body)
    assert "brands[0].sources[0]" in message and "unknown connector 'myspace'" in message
    assert "mastodon" in message and "reddit" in message


def test_missing_env_secret_names_the_variable_and_key(tmp_path: Path) -> None:
    message = error_for(tmp_path, '[alerts]\nslack_bot_token = "${FW_TEST_TOKEN}"\n' + GOOD_BRAND)
    assert "alerts.slack_bot_token" in message and "FW_TEST_TOKEN" in message


def test_env_secret_and_default_are_substituted(tmp_path: Path) -> None:
    body = '[alerts]\nslack_bot_token = "${FW_TEST_TOKEN}"\n[web]\nhost = "${FW_HOST:-0.0.0.0}"\n' + GOOD_BRAND
    config = load_config(write(tmp_path, body), env={"FW_TEST_TOKEN": "xoxb-123"})
    assert config.alerts.slack_bot_token.get_secret_value() == "xoxb-123" and config.web.host == "0.0.0.0"


def test_duplicate_source_names_are_refused(tmp_path: Path) -> None:
    source = '[[brands.sources]]\nname = "same"\nkind = "hackernews"\n'
    message = error_for(tmp_path, GOOD_BRAND + source + source)
    assert "'same' is used twice" in message


def test_invalid_toml_is_reported_with_the_file(tmp_path: Path) -> None:
    message = error_for(tmp_path, "[daemon\n")
    assert "flarewatch.toml" in message and "not valid TOML" in message


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor.cli", *args], capture_output=True, text=True, timeout=120)


def test_config_check_and_run_refuse_a_bad_file_with_exit_2(tmp_path: Path) -> None:
    bad = write(tmp_path, '[web]\nport = 99999\n' + GOOD_BRAND)
    for command in (["config", "check", str(bad)], ["run", "--config", str(bad)]):
        result = _cli(*command)
        assert result.returncode == 2, result
        assert "web.port" in result.stderr and str(bad) in result.stderr


def test_config_check_accepts_the_default() -> None:
    result = _cli("config", "check", str(DEFAULT_CONFIG))
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout and "brand" in result.stdout


def test_secrets_are_redacted_wherever_a_config_is_printed(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from monitor.cli import app

    path = write(tmp_path, """
[database]
url = "postgresql://flarewatch:pg-s3cret@db.example:5432/flarewatch"

[web]
ingest_token = "ingest-s3cret"
metrics_token = "metrics-s3cret"
session_secret = "session-s3cret-0123456789"

[alerts]
slack_bot_token = "xoxb-s3cret"
slack_signing_secret = "sign-s3cret"

[alerts.webhooks.ops]
url = "https://hooks.example/flarewatch"
secret = "hook-s3cret"

[alerts.email]
host = "smtp.example"
username = "alerts"
password = "smtp-s3cret"
sender = "fw@acme.example"

[alerts.dingtalk.support]
access_token = "ding-s3cret"
secret = "SECding-s3cret"

[alerts.wecom.support]
key = "wecom-s3cret"
""" + GOOD_BRAND + """
[[brands.sources]]
name = "acme-x"
kind = "x"
params = { bearer_token = "x-s3cret" }

[[brands.sources]]
name = "acme-bsky"
kind = "bluesky"
params = { identifier = "acme.bsky.social", app_password = "bsky-s3cret" }

[[brands.sources]]
name = "acme-reddit"
kind = "reddit"
params = { client_id = "app", client_secret = "reddit-s3cret" }

[[brands.sources]]
name = "acme-weibo"
kind = "weibo"
params = { cookie = "SUB=weibo-s3cret" }

[[brands.sources]]
name = "acme-toots"
kind = "mastodon"
params = { access_tokens = { "https://mastodon.social" = "toot-s3cret" } }

[[brands.sources]]
name = "acme-hook"
kind = "webhook"
params = { token = "push-s3cret" }
""")
    result = CliRunner().invoke(app, ["config", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert "db.example" in result.output and "flarewatch:***@" in result.output
    config = load_config(path, env={})
    sources = [source for _, source in config.sources()]
    for shown in (result.output, repr(config), str(config.alerts), config.alerts.model_dump_json(),
                  str(config.web), config.web.model_dump_json(),
                  *(repr(source) for source in sources), *(str(source.params) for source in sources)):
        assert "s3cret" not in shown
    assert config.alerts.webhooks["ops"].secret.get_secret_value() == "hook-s3cret"  # still usable
    assert sources[0].params["bearer_token"].get_secret_value() == "x-s3cret"
    assert config.web.ingest_token is not None and config.web.ingest_token.get_secret_value() == "ingest-s3cret"


SECRET_NAMES = ("token", "secret", "password", "cookie", "key")


def test_every_secret_field_of_a_connector_or_channel_is_a_secret_str() -> None:
    """A new connector or channel (or [web] token) whose credential is a plain `str` would be printed with the config."""
    from pydantic import BaseModel, SecretStr

    from alerts.base import SENDERS
    from alerts.senders import build_senders
    from alerts.settings import AlertSettings
    from connectors.registry import CONNECTORS
    from monitor.config import WebConfig

    build_senders(AlertSettings())  # loads every channel module, so SENDERS is complete
    models: list[type[BaseModel]] = [cls.params_model for cls in CONNECTORS.values()]
    models += [cls.settings_model for cls in SENDERS.values() if cls.settings_model is not None]
    models += [AlertSettings, WebConfig]
    plain = [f"{model.__name__}.{name}" for model in models for name, info in model.model_fields.items()
             if any(word in name for word in SECRET_NAMES) and not name.endswith("_url") and "SecretStr" not in str(info.annotation)
             and SecretStr is not info.annotation and info.annotation is not bool]  # bool: a switch (secure_cookies)
    assert not plain, f"credentials typed as plain text: {plain}"
    assert len(models) > 10  # every connector and channel was seen


def test_an_optional_secret_from_an_unset_variable_is_not_set(tmp_path: Path) -> None:
    path = write(tmp_path, """
[alerts]
slack_bot_token = "${FW_UNSET:-}"
web_base_url = "${FW_UNSET:-}"

[alerts.webhooks.ops]
url = "https://hooks.example/flarewatch"
secret = "${FW_UNSET:-}"

[alerts.email]
host = "smtp.example"
username = "${FW_UNSET:-}"
password = "${FW_UNSET:-}"
sender = "fw@acme.example"

[alerts.dingtalk.support]
access_token = "t"
secret = "${FW_UNSET:-}"
""" + GOOD_BRAND)
    alerts = load_config(path, env={}).alerts
    assert alerts.slack_bot_token is None and alerts.web_base_url is None  # console alerts, no links
    assert alerts.webhooks["ops"].secret is None  # no signature header
    assert alerts.email is not None and alerts.email.username is None and alerts.email.password is None  # no login
    assert alerts.dingtalk["support"].secret is None  # not signed


def test_a_printed_webhook_shows_where_it_goes_not_the_token_in_its_url(tmp_path: Path) -> None:
    path = write(tmp_path, """
[alerts.webhooks.chat]
url = "https://hooks.example:8443/services/T0/B0/url-s3cret?key=also-s3cret"
""" + GOOD_BRAND)
    config = load_config(path, env={})
    for shown in (repr(config), str(config.alerts), repr(config.alerts.webhooks)):
        assert "s3cret" not in shown and "https://hooks.example:8443/…" in shown
    assert config.alerts.webhooks["chat"].url.endswith("?key=also-s3cret")  # still the whole URL to post to


def test_a_lease_no_longer_than_the_interval_renewing_it_is_warned_about(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from monitor.cli import app

    assert load_config(DEFAULT_CONFIG, env={}).daemon.lease_warnings() == []  # 20 s > 10 s and 15 s
    path = write(tmp_path, "[daemon]\nlease_seconds = 10\ndetect_interval_seconds = 10\nescalate_interval_seconds = 5\n"
                 + GOOD_BRAND)
    daemon = load_config(path, env={}).daemon
    [warning] = daemon.lease_warnings()
    assert "daemon.lease_seconds (10)" in warning and "daemon.detect_interval_seconds (10)" in warning
    assert daemon.lease_warnings(["score", "web"]) == []  # this replica does not detect
    assert len(daemon.model_copy(update={"lease_seconds": 5}).lease_warnings()) == 2  # escalation's 5 s too
    result = CliRunner().invoke(app, ["config", "check", str(path)])
    assert result.exit_code == 0, result.output  # a warning, not an error: leased writes are fenced
    assert "warning: daemon.lease_seconds (10) is not longer than daemon.detect_interval_seconds" in result.output
