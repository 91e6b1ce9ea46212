"""`flarewatch demo` as a new user runs it: offline, the bundled model, console alerts, the crisis caught."""
from __future__ import annotations

import os
import re
import subprocess
import sys

from monitor.core import accounts
from monitor.config import load_config
from monitor.demo_stream import BRAND, crisis_start, generate
from monitor.core.storage.db import make_engine, session_factory


def test_the_demo_stream_is_deterministic_and_holds_a_growing_crisis() -> None:
    first, second = list(generate(2.0)), list(generate(2.0))
    assert first == second
    start = crisis_start(2.0)
    crisis = [p for p in first if "router" in str(p["text"]) or "路由器" in str(p["text"])]
    early = [p for p in crisis if str(p["created_at"]) < (start.replace(hour=start.hour + 1)).isoformat()]
    assert len(crisis) > 3 * len(early) > 0, "the complaint should start small and grow"
    assert all(BRAND.lower() in str(p["text"]).lower() for p in first)
    assert {p["lang"] for p in first} == {"en", "zh"}


def test_demo_prints_alerts_and_catches_the_crisis(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "demo", "--keep", str(tmp_path / "demo.db")],
        capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"},  # must work with no network
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "[flarewatch]" in out and "Acme" in out, out[-3000:]
    detected = re.search(r"The first alert went out at \d\d:\d\d UTC, (\d+) minutes later", " ".join(out.split()))
    assert detected, out[-3000:]
    assert int(detected.group(1)) <= 60, "the demo crisis should be caught within the hour"
    assert "Is anyone else's" not in out
    # It ends with one command and a ready account, and that command's config opens the demo's database.
    config = tmp_path / "demo.toml"
    assert f"flarewatch web --config {config}" in out
    login = re.search(r"log in as demo with password (\S+) ", " ".join(out.split()))
    assert login, out[-1500:]
    engine = make_engine(load_config(config).database_url)
    try:
        with session_factory(engine)() as session:
            assert accounts.authenticate(session, "demo", login.group(1)) is not None
    finally:
        engine.dispose()
    refused = subprocess.run([sys.executable, "-m", "monitor.cli", "demo", "--keep", str(tmp_path / "demo.db")],
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "already exists" in refused.stderr  # a named file is never overwritten
