"""Alert delivery speed: from the committed incident change to the message in Slack.

Runs the real path (outbox row -> deliver_pending -> slack_sdk WebClient -> a local Slack-compatible
server over real sockets, tests/slack_server.py) on SQLite in a temp dir, and prints

* latency: commit of an `opened` incident -> parent message stored by the server, for an idle
  channel (what the first responder waits for, on top of the deliver job's interval);
* throughput: many incidents over several channels with Slack's 1 message/s/channel pacing;
* render: building one parent message (Block Kit, 5 top posts) from the database.

    python bench/bench_alerts.py --incidents 50 --channels 5
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alerts.blocks import parent_message  # noqa: E402
from alerts.delivery import deliver_pending
from alerts.senders import Senders  # noqa: E402
from alerts.settings import AlertSettings  # noqa: E402
from alerts.slack import SlackSender  # noqa: E402
from alerts.view import incident_view  # noqa: E402
from monitor.core.clock import SystemClock  # noqa: E402
from monitor.core.storage.db import make_engine, migrate, session_factory  # noqa: E402
from monitor.core.storage.schema import Incident  # noqa: E402
from tests.alerts_support import TOKEN, open_incident  # noqa: E402
from tests.slack_server import SlackServer  # noqa: E402

POSTS = [(f"post {i}: the refund still has not arrived & support is silent 😡", f"author{i}", 1000 * i)
         for i in range(8)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=50)
    parser.add_argument("--channels", type=int, default=5)
    parser.add_argument("--pace", type=float, default=1.0, help="seconds per message per channel")
    args = parser.parse_args()
    clock = SystemClock()
    channels = {f"C0BENCH{i:03d}": f"bench-{i}" for i in range(args.channels)}
    with tempfile.TemporaryDirectory() as tmp, SlackServer(channels=dict(channels)) as server:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        migrate(engine)
        sessions = session_factory(engine)

        def settings_for(pace: float) -> AlertSettings:
            return AlertSettings.model_validate({
                "slack_bot_token": TOKEN, "slack_base_url": server.base_url, "slack_seconds_per_message": pace,
                "escalation": [{"brands": [f"brand{i}"], "levels": [{"channels": [cid]}]}
                               for i, cid in enumerate(channels)],
            })

        # Latency, one idle channel at a time (no pacing wait involved).
        settings = settings_for(0)
        senders = Senders({"slack": SlackSender(settings)}, settings)
        latencies = []
        for n in range(20):
            start = time.perf_counter()
            open_incident(sessions, settings, clock.now(), brand=f"brand{n % args.channels}", posts=POSTS)
            deliver_pending(sessions, senders, clock, 50)
            latencies.append((server.calls_to("chat.postMessage")[-1].at - start) * 1000)
        latencies.sort()
        print(f"latency commit->posted: p50 {statistics.median(latencies):.1f} ms, "
              f"p95 {latencies[int(len(latencies) * 0.95) - 1]:.1f} ms, max {latencies[-1]:.1f} ms (20 incidents)")

        # Throughput under Slack's pacing.
        settings = settings_for(args.pace)
        senders = Senders({"slack": SlackSender(settings)}, settings)
        before = len(server.calls_to("chat.postMessage"))
        for n in range(args.incidents):
            open_incident(sessions, settings, clock.now(), brand=f"brand{n % args.channels}", posts=POSTS)
        start = time.perf_counter()
        sent = 0
        while sent < args.incidents:
            sent += deliver_pending(sessions, senders, clock, 100)
        elapsed = time.perf_counter() - start
        assert len(server.calls_to("chat.postMessage")) - before == args.incidents
        print(f"throughput: {args.incidents} incidents over {args.channels} channels at {args.pace:g} s/msg/channel: "
              f"{elapsed:.1f} s, {args.incidents / elapsed:.2f} msg/s (bound {args.channels / max(args.pace, 1e-9):.2f})")

        # Rendering one parent message from the database.
        with sessions() as session:
            incident = session.get(Incident, 1)
            assert incident is not None
            start = time.perf_counter()
            for _ in range(50):
                parent_message(incident_view(session, incident, datetime.now(timezone.utc)), clock.now())
            print(f"render parent message (view + blocks, 5 top posts): {(time.perf_counter() - start) / 50 * 1000:.2f} ms")
        engine.dispose()


if __name__ == "__main__":
    main()
