"""Detection quality and speed on generated crisis replays (and NAB series when present).

For each seed: make a replay with ../shared/tools/make_replay.py (a seasonal background, benign
volume spikes, one exponentially growing complaint), run the same code as `flarewatch replay`,
score the incidents with ../shared/tools/score_replay.py, and print detection delay (minutes
from the crisis start), the crisis size at alert (posts published by then) and false alarms per
week of background. `--scorer oracle` uses the labels make_replay wrote into truth.json, which
separates detector quality from model quality; `--scorer model` uses the configured model.

Also times `flarewatch backtest` on a month of 5-minute buckets, and scores it on the NAB
realTweets development series with ../shared/tools/nab_score.py (standard profile: its own alerts,
and the best swept threshold on anomaly_score) with the false alarms per week outside the labelled
windows, past NAB's probation. These are development figures: five more series are held back.

The limit: for each replay, an ideal detector that knows the true background rate of negative
posts (make_replay's calendar, trend and benign spikes; not the random hourly noise nor which
hours a benign burst will come in, which nobody can know) runs a Poisson CUSUM for a doubling of
the rate, its threshold set to the same false-alarm budget on eight-week streams of the same kind
without a crisis (`ideal_threshold`); its delay and the crisis posts by its alarm, and our delay
divided by its, say how much the estimation costs.

    python bench/bench_detection.py --seeds 1 2 3 --scorer oracle
    python bench/bench_detection.py --seeds 1 --make-args --dispersion 3 --bursts-per-week 3
    python bench/bench_detection.py --nab-only
    python bench/bench_detection.py --nab-only --nab-budgets 0.25 0.5 2 4
    python bench/bench_detection.py --nab-only --nab-start-hours 1 2 3 6 12 24
    python bench/bench_detection.py --windows-only --days 7 --detectors volume share --make-args --seed-reach ordinary

`--windows-only` is for developing the volume and share tests: it skips the pipeline (database,
model, incidents, viral) and feeds the replay's truth-labelled minute counts straight through the
daemon's own hour tests, calibration and baseline (`windows.hour_tests`, `fold_hour`), a replay
in seconds instead of minutes. It reports each crisis's first firing minute (the alert the full
run would open, had no viral post come first) and the firing episodes outside the crises (an
hour apart), not incidents: the full run stays the figure of record.

Both summary lines give medians over the seeds and how many crises were caught within the goal's
20 posts (ours and the ideal's). One seed's figure moves by ten posts with its stream's luck, and a
median of 20 seeds by up to 0.3 in the ratio: compare variants on many seeds (`--seeds $(seq 1 40)`).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# ../shared beside the checkout (FLAREWATCH_SHARED overrides, e.g. from a git worktree elsewhere)
SHARED = Path(os.environ.get("FLAREWATCH_SHARED", ROOT.parent / "shared"))
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


@dataclass(frozen=True)
class ReplayPost:
    at: datetime
    negative: bool  # by the truth labels
    crisis: bool


def replay_posts(posts_path: Path, truth: dict) -> list[ReplayPost]:
    """A replay's posts with their true label and whether they belong to a crisis."""
    crisis_ids = set().union(*(c["post_ids"] for c in truth["crises"]))
    out = []
    for line in posts_path.open(encoding="utf-8"):
        post = json.loads(line)
        out.append(ReplayPost(datetime.fromisoformat(post["created_at"].replace("Z", "+00:00")),
                              truth["labels"].get(post["id"]) == "negative", post["id"] in crisis_ids))
    return out


def crisis_spans(truth: dict) -> list[tuple[datetime, datetime]]:
    """Each crisis from its start to an hour after its end: alarms in it belong to it."""
    return [(datetime.fromisoformat(c["start"]), datetime.fromisoformat(c["end"]) + timedelta(hours=1))
            for c in truth["crises"]]


GOAL_POSTS = 20  # the goal: every crisis caught while it has at most this many negative posts


def spread_of(posts: list[int | None], ideal_posts: list[int | None], ratios: list[float | None]) -> dict:
    """Medians over many seeds, and how many crises met the goal: one seed's figure moves by ten
    posts with the luck of its stream, so single seeds cannot tell two detectors apart."""
    def median(values: list) -> float | None:
        known = [v for v in values if v is not None]
        return round(statistics.median(known), 2) if known else None

    def within_goal(values: list[int | None]) -> str:
        return f"{sum(1 for v in values if v is not None and v <= GOAL_POSTS)}/{len(values)}"

    return {"posts_median": median(posts), "ideal_posts_median": median(ideal_posts),
            "ratio_to_ideal_median": median(ratios), f"caught_within_{GOAL_POSTS}_posts": within_goal(posts),
            f"ideal_within_{GOAL_POSTS}_posts": within_goal(ideal_posts)}


def ratios_to_ideal(per_crisis: list[dict], ideal_delays: list[int | None]) -> list[float | None]:
    """Our delay over the ideal's, per crisis (None where either raised no alarm in it)."""
    return [round(c["delay_minutes"] / d, 2) if c["caught"] and d else None for c, d in zip(per_crisis, ideal_delays)]


def run_seed(seed: int, args: argparse.Namespace, work: Path, ideal_at: float) -> dict:
    """One replay through the full pipeline; `ideal_at`: the ideal's threshold (`ideal_threshold`)."""
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
    ideal = ideal_delay(posts_path, truth_path, args.make_args, ideal_at)
    ratios = ratios_to_ideal(summary["per_crisis"], ideal["delays_minutes"])
    truth = json.loads(truth_path.read_text(encoding="utf-8"))
    # Alerts per crisis: openings (and reopenings) inside it; one crisis should be one incident.
    spans = crisis_spans(truth)
    openings = [sum(1 for i in result.incidents if a <= datetime.fromisoformat(i["detected_at"]) <= b)
                for a, b in spans]
    return {"seed": seed, "seconds": round(elapsed, 1), "posts": result.posts, **summary,
            "incidents_per_crisis": openings, "ideal": ideal, "delay_ratio_to_ideal": ratios,
            "first_signals": [i["first_signals"] for i in result.incidents]}


def window_first_fires(posts_path: Path, truth_path: Path, detectors: list[str]) -> dict:
    """The volume and share tests alone on a replay's truth-labelled minute counts (module docstring)."""
    import numpy as np

    from monitor.detection import calibration
    from monitor.detection.baseline_store import new_baseline
    from monitor.detection.settings import DetectionSettings
    from monitor.detection.windows import alert_level, fold_hour, hour_tests, tail_state

    truth = json.loads(truth_path.read_text(encoding="utf-8"))
    start = datetime.fromisoformat(truth["start"]).replace(minute=0, second=0, microsecond=0)
    minutes = int(truth["days"] * 1440) + 60
    negative, volume = np.zeros(minutes), np.zeros(minutes)
    posts = replay_posts(posts_path, truth)
    crisis_posts = [p.at for p in posts if p.crisis]
    for post in posts:
        m = int((post.at - start).total_seconds() // 60)
        if 0 <= m < minutes:
            volume[m] += 1
            negative[m] += post.negative
    settings = DetectionSettings(detectors=detectors)  # viral, if configured, keeps its share of the budget
    baseline = new_baseline(settings)
    fires: list[datetime] = []
    previous = None
    for h in range(minutes // 60):
        hour = start + timedelta(hours=h)
        if previous is not None:
            fold_hour(baseline, *previous)
        counts = {"negative": negative[h * 60:(h + 1) * 60].tolist(), "volume": volume[h * 60:(h + 1) * 60].tolist()}
        tests = hour_tests(baseline, hour, counts, 1, settings) if baseline.hours >= settings.warmup_hours else None
        if tests is not None:
            fired = np.zeros(len(counts["negative"]), dtype=bool)
            for detector, surprises in tests.surprise.items():
                alpha = alert_level(baseline, settings, settings.false_alarms_per_week, detector)
                fired |= surprises >= calibration.surprise_for(tail_state(baseline, detector), alpha)
            fires += [hour + timedelta(minutes=int(k) + 1) for k in np.nonzero(fired)[0]]
        previous = (hour, counts, 1, settings, None, tests)
    spans = crisis_spans(truth)
    per_crisis = []
    for a, b in spans:
        first = next((f for f in fires if a <= f <= b), None)
        per_crisis.append({"caught": first is not None,
                           "delay_minutes": None if first is None else round((first - a).total_seconds() / 60, 1),
                           "posts_at_fire": None if first is None else sum(1 for t in crisis_posts if t <= first)})
    episodes, last = 0, None
    for f in fires:
        if not any(a <= f <= b for a, b in spans):
            episodes += last is None or (f - last) > timedelta(hours=1)
            last = f
    return {"per_crisis": per_crisis, "episodes_outside_crises": episodes}


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


def bench_nab(work: Path, budget: float | None = None, skip_hours: int = 0) -> dict:
    """`flarewatch backtest` on each NAB development series, scored with NAB's own rules (at the
    default false-alarm budget, or at `budget` alerts a week). `skip_hours`: the detector starts
    that many hours into each series (the skipped rows, all within NAB's probation, detect
    nothing), so how much the score owes to one path of the detector's state can be seen."""
    from monitor.detection.backtest import Scored, bucket_minutes_of, read_series, run_backtest, write_scored
    from monitor.detection.settings import DetectionSettings

    nab = SHARED / "data" / "nab_realtweets"
    windows = json.loads((nab / "windows.json").read_text(encoding="utf-8"))
    out = work / ("nab" + (f"-budget-{budget:g}" if budget is not None else "") + (f"-from-{skip_hours}h" if skip_hours else ""))
    out.mkdir(parents=True, exist_ok=True)
    per_series = {}
    for path in sorted(nab.glob("Twitter_volume_*.csv")):
        points = read_series(path)
        skipped = points[:skip_hours * 60 // bucket_minutes_of(points)]
        began = time.process_time()
        rows = run_backtest(points[len(skipped):], DetectionSettings(), budget)
        seconds = time.process_time() - began
        rows = [Scored(p, 0.0, False) for p in skipped] + rows
        write_scored(rows, out / path.name)
        probation = min(int(0.15 * len(rows)), 750)
        spans = [(datetime.fromisoformat(a).replace(tzinfo=timezone.utc), datetime.fromisoformat(b).replace(tzinfo=timezone.utc))
                 for a, b in windows[path.name]]
        scored = rows[probation:]
        false = sum(1 for r in scored if r.alert and not any(a <= r.point.at <= b for a, b in spans))
        weeks = (scored[-1].point.at - scored[0].point.at).total_seconds() / 604800
        # Past probation: every alert (what the budget, in alerts a week, is spent on) and the false ones.
        alerts = sum(r.alert for r in scored)
        per_series[path.name] = {"alerts": alerts, "alerts_per_week": round(alerts / weeks, 2),
                                 "false_alarms": false, "false_alarms_per_week": round(false / weeks, 2),
                                 "cpu_seconds": round(seconds, 3)}
    scorer = [sys.executable, str(TOOLS / "nab_score.py"), "--windows", str(nab / "windows.json"), "--results", str(out)]
    own = subprocess.run(scorer, check=True, capture_output=True, text=True).stdout
    swept = subprocess.run(scorer + ["--column", "anomaly_score", "--sweep"], check=True, capture_output=True,
                           text=True).stdout
    return {"per_series": per_series, "alerts_table": own.strip().splitlines(),
            "swept": swept.strip().splitlines()[-1]}


BENIGN_SPIKE_NEGATIVE_SHARE = 0.1  # make_replay's benign spikes: mostly positive and neutral posts
IDEAL_BACKGROUND_SEEDS = (9001, 9002, 9003, 9004)  # background streams the ideal's threshold is set on
IDEAL_BACKGROUND_DAYS = 56


@dataclass(frozen=True)
class IdealPath:
    """The ideal detector's statistic per minute of one replay, and where its crises lie."""

    stat: list[float]
    crises: list[tuple[int, int]]  # (first, last) minute of each crisis span
    crisis_minutes: list[int]  # each crisis post's minute
    warm: int  # minutes before the first that may alarm (our detectors' warm-up)
    weeks: float  # of alarming time


def _replay_options(make_args: list[str]) -> argparse.Namespace:
    """The make_replay options the ideal needs, with make_replay's defaults."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--peak-per-hour", type=float, default=30)
    parser.add_argument("--mix", default="0.2,0.45,0.35")
    parser.add_argument("--trend", type=float, default=0.0)
    parser.add_argument("--benign-spikes", type=int, default=2)
    return parser.parse_known_args(make_args)[0]


def _ideal_path(posts_path: Path, truth_path: Path, make_args: list[str]) -> IdealPath:
    """A Poisson CUSUM for a doubling of the negative rate, against the background calendar and
    the benign spikes and bursts (their posts as truth.json counts them, spread as make_replay
    makes them: flat, or decaying over a quarter of their span)."""
    sys.path.insert(0, str(TOOLS))
    from make_replay import seasonal_rate  # noqa: PLC0415 - the generator's own calendar

    from monitor.detection.settings import DetectionSettings

    truth = json.loads(truth_path.read_text(encoding="utf-8"))
    known = _replay_options(make_args)
    negative_share = float(known.mix.split(",")[0])
    start = datetime.fromisoformat(truth["start"])
    minutes = int(truth["days"] * 1440)
    counts = [0] * minutes
    crisis_minutes = []
    for post in replay_posts(posts_path, truth):
        m = int((post.at - start).total_seconds() // 60)
        if post.crisis:
            crisis_minutes.append(m)
        if post.negative and 0 <= m < minutes:
            counts[m] += 1
    means = [seasonal_rate(start + timedelta(minutes=m), known.peak_per_hour) * negative_share / 60
             * (1 + known.trend) ** (m / 10080) for m in range(minutes)]
    for spike in truth["benign_spikes"]:  # known too: a spike's posts at a flat rate, a burst's decaying
        a, b = (int((datetime.fromisoformat(spike[k]) - start).total_seconds() // 60) for k in ("start", "end"))
        span = range(max(0, a), min(minutes, b + 1))
        shape = [math.exp(-4.0 * (m - a) / max(1, b - a)) if spike.get("kind") == "burst" else 1.0 for m in span]
        share = negative_share if spike.get("kind") == "burst" else BENIGN_SPIKE_NEGATIVE_SHARE
        per_weight = spike["posts"] * share / max(sum(shape), 1e-9)
        for m, w in zip(span, shape):
            means[m] += per_weight * w
    rho = 2.0
    stat, path = 0.0, []
    for m in range(minutes):
        stat = max(0.0, stat + counts[m] * math.log(rho) - (rho - 1) * means[m])
        path.append(stat)
    crises = [(int((a - start).total_seconds() // 60), int((b - start).total_seconds() // 60))
              for a, b in crisis_spans(truth)]
    warm = min(minutes, DetectionSettings().warmup_hours * 60)
    return IdealPath(path, crises, crisis_minutes, warm, (minutes - warm) / 10080)


def _ideal_episodes(path: IdealPath, h: float) -> tuple[int, list[int | None]]:
    """False alarms (crossings of h outside crises; one lasts until the statistic is back at 0)
    and each crisis's first crossing minute."""
    false, above, first = 0, False, [None] * len(path.crises)
    for m, value in enumerate(path.stat):
        crossing = value >= h and not above
        above = value >= h or (above and value > 0)
        if crossing and m >= path.warm:
            hit = next((i for i, (a, b) in enumerate(path.crises) if a <= m <= b), None)
            if hit is None:
                false += 1
            elif first[hit] is None:
                first[hit] = m
    return false, first


def ideal_threshold(days: float, make_args: list[str], work: Path, budget_per_week: float = 1.0) -> float:
    """The ideal's threshold: the least that alarms at most `budget_per_week` on streams like the
    replay's without a crisis (the same options, benign spikes as dense), eight weeks each. Set on
    the replay itself it would be a hindsight threshold, as lucky as the stream: 1.9 to 6.4 over
    five 7-day ordinary-reach seeds."""
    per_stream = _replay_options(make_args).benign_spikes
    extra = [*make_args, "--crises", "0", "--benign-spikes", str(round(per_stream * IDEAL_BACKGROUND_DAYS / days))]
    key = hashlib.sha256(json.dumps(extra).encode()).hexdigest()[:12]
    paths = []
    for seed in IDEAL_BACKGROUND_SEEDS:
        folder = work / f"ideal-background-{key}-{seed}"
        if not (folder / "truth.json").exists():
            make_replay(seed, IDEAL_BACKGROUND_DAYS, folder, extra)
        paths.append(_ideal_path(folder / "posts.jsonl", folder / "truth.json", make_args))
    allowed = budget_per_week * sum(p.weeks for p in paths)
    low, high = 0.1, 200.0
    for _ in range(40):
        mid = (low + high) / 2
        if sum(_ideal_episodes(p, mid)[0] for p in paths) <= allowed:
            high = mid
        else:
            low = mid
    return high


def ideal_delay(posts_path: Path, truth_path: Path, make_args: list[str], threshold: float) -> dict:
    """Delay of the ideal's CUSUM (`_ideal_path`) at `threshold` (`ideal_threshold`), and its false
    alarms a week on this replay."""
    path = _ideal_path(posts_path, truth_path, make_args)
    false, first = _ideal_episodes(path, threshold)
    delays = [None if f is None else f - a for f, (a, _) in zip(first, path.crises)]
    posts = [None if f is None else sum(1 for m in path.crisis_minutes if m <= f) for f in first]
    return {"threshold": round(threshold, 2), "false_alarms_per_week": round(false / path.weeks, 2),
            "delays_minutes": delays, "posts_at_alarm": posts}


def bench_windows_only(args: argparse.Namespace) -> None:
    rows = []
    ideal_at = ideal_threshold(args.days, args.make_args, args.work)
    for seed in args.seeds:
        folder = args.work / f"replay-{seed}"
        make_replay(seed, args.days, folder, args.make_args)
        result = window_first_fires(folder / "posts.jsonl", folder / "truth.json", args.detectors)
        ideal = ideal_delay(folder / "posts.jsonl", folder / "truth.json", args.make_args, ideal_at)
        row = {**result, "ideal_delay_minutes": ideal["delays_minutes"],
               "ideal_posts_at_alarm": ideal["posts_at_alarm"],
               "delay_ratio_to_ideal": ratios_to_ideal(result["per_crisis"], ideal["delays_minutes"])}
        rows.append(row)
        print(json.dumps({"seed": seed, **row}))
    weeks = len(rows) * args.days / 7
    crises = [c for r in rows for c in r["per_crisis"]]
    posts = [c["posts_at_fire"] for c in crises]
    print(json.dumps({"windows_only": True, "detectors": args.detectors, "seeds": args.seeds,
                      "caught": f"{sum(c['caught'] for c in crises)}/{len(crises)}",
                      "posts_at_fire": posts,
                      **spread_of(posts, [x for r in rows for x in r["ideal_posts_at_alarm"]],
                                  [x for r in rows for x in r["delay_ratio_to_ideal"]]),
                      "delay_minutes": [c["delay_minutes"] for c in crises],
                      "episodes_outside_crises_per_week": round(sum(r["episodes_outside_crises"] for r in rows) / weeks, 2)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--days", type=float, default=14)
    parser.add_argument("--scorer", choices=["oracle", "model"], default="oracle")
    parser.add_argument("--detectors", nargs="+", default=["volume", "share", "viral"])
    parser.add_argument("--work", type=Path, default=Path("/tmp/flarewatch-bench-detection"))
    parser.add_argument("--nab-only", action="store_true", help="only the backtest timing and the NAB scores")
    parser.add_argument("--nab-budgets", type=float, nargs="+", default=[],
                        help="also score NAB's own alerts at these false-alarm budgets (alerts a week): "
                             "does the sensitivity setting mean what it says on real series?")
    parser.add_argument("--nab-start-hours", type=int, nargs="+", default=[],
                        help="also score NAB with the detector starting this many hours into each series: "
                             "how far the score moves with the path the detector's state takes")
    parser.add_argument("--windows-only", action="store_true",
                        help="replays through the volume and share tests alone, on the truth labels (seconds)")
    parser.add_argument("--make-args", nargs=argparse.REMAINDER, default=[],
                        help="extra make_replay.py arguments (last on the line)")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.windows_only:
        bench_windows_only(args)
        return

    print(json.dumps({"backtest_speed": bench_backtest_speed()}))
    nab = SHARED / "data" / "nab_realtweets"
    if not nab.exists():
        print(json.dumps({"nab": f"skipped: {nab} does not exist (no NAB series or scorer in ../shared)"}))
    else:
        print(json.dumps({"nab": bench_nab(args.work)}, indent=1))
        for budget in args.nab_budgets:
            result = bench_nab(args.work, budget)
            print(json.dumps({"nab_budget": budget, "own": result["alerts_table"][-1],
                              "false_alarms_per_week": {name[len("Twitter_volume_"):-4]: row["false_alarms_per_week"]
                                                        for name, row in result["per_series"].items()}}))
        for hours in args.nab_start_hours:
            print(json.dumps({"nab_start_hours": hours, "own": bench_nab(args.work, skip_hours=hours)["alerts_table"][-1]}))
    if args.nab_only:
        return
    rows = []
    ideal_at = ideal_threshold(args.days, args.make_args, args.work)
    for seed in args.seeds:
        row = run_seed(seed, args, args.work, ideal_at)
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
        "ideal_delay_minutes": [d for r in rows for d in r["ideal"]["delays_minutes"]],
        "delay_ratio_to_ideal": [x for r in rows for x in r["delay_ratio_to_ideal"]],
        **spread_of([c["posts_at_alert"] if c["caught"] else None for r in rows for c in r["per_crisis"]],
                    [x for r in rows for x in r["ideal"]["posts_at_alarm"]],
                    [x for r in rows for x in r["delay_ratio_to_ideal"]]),
        "incidents_per_crisis": [x for r in rows for x in r["incidents_per_crisis"]],
        "replay_seconds": [r["seconds"] for r in rows],
    }))


if __name__ == "__main__":
    main()
