"""`flarewatch demo` as a new user runs it: offline, the bundled model, console alerts, the crisis caught."""
from __future__ import annotations

import os
import re
import subprocess
import sys

from monitor.demo_stream import BRAND, crisis_start, generate


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
    detected = re.search(r"detected (\d+) minutes later", out)
    assert detected, out[-3000:]
    assert int(detected.group(1)) <= 60, "the demo crisis should be caught within the hour"
    assert (tmp_path / "demo.db").exists()
