"""`flarewatch replay` and `flarewatch backtest` (mounted by monitor/cli/__init__.py); heavy imports inside."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def backtest_command(
    series: Annotated[Path, typer.Option("--series", help="CSV with columns timestamp,value (e.g. NAB realTweets).")],
    out: Annotated[Path, typer.Option("--out", help="Where to write timestamp,value,anomaly_score,alert.")],
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="Take the detection settings from this file.")] = None,
    false_alarms_per_week: Annotated[
        Optional[float], typer.Option("--false-alarms-per-week", min=0.000001, help="Override the sensitivity.")
    ] = None,
) -> None:
    """Run the volume detector on a bucketed count series (no database)."""
    from monitor.detection.backtest import SeriesError, read_series, run_backtest, write_scored
    from monitor.detection.settings import DetectionSettings

    settings = _load_config(config).detection if config is not None else DetectionSettings()
    try:
        points = read_series(series)
    except SeriesError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    rows = run_backtest(points, settings, false_alarms_per_week)
    write_scored(rows, out)
    typer.echo(f"{len(rows)} buckets, {sum(r.alert for r in rows)} alerts -> {out}")


def replay_command(
    posts: Annotated[Path, typer.Option("--in", help="Posts as JSON lines (the make_replay.py format).")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the incidents, one JSON line each.")] = Path(
        "incidents.jsonl"),
    config: Annotated[Optional[Path], typer.Option(
        "--config", "-c", help="Configuration file (brands, detection and model settings).")] = None,
    brand: Annotated[Optional[str], typer.Option("--brand", help="Brand to match posts against (added if the config lacks it).")] = None,
    db: Annotated[Optional[str], typer.Option("--db", help="Database URL (default: a temporary SQLite file).")] = None,
    step_seconds: Annotated[int, typer.Option("--step-seconds", min=1, help="Simulated detect interval.")] = 60,
) -> None:
    """Replay a post stream through score, aggregate and detect on a simulated clock."""
    from datetime import timedelta

    from models import load_scorer
    from monitor.cli.common import EXIT_FAILED, EXIT_USAGE, BadLines, ProgressReport
    from monitor.config import BrandConfig, Config
    from monitor.replay import ReplayError, read_posts, replay, write_incidents

    loaded = _load_config(config) if config is not None else Config()
    if brand is not None and all(b.name != brand for b in loaded.brands):
        loaded.brands.append(BrandConfig(name=brand, terms=[brand]))
    bad = BadLines(posts)
    try:
        items = read_posts(posts, bad.add)
        try:
            scorer = load_scorer(loaded.model)
        except (OSError, RuntimeError, ValueError) as exc:
            typer.echo(f"error: cannot load the sentiment model {loaded.model.name!r}: {exc}", err=True)
            raise typer.Exit(EXIT_FAILED) from None
        with ProgressReport("replay", "simulated minutes") as progress:
            result = replay(items, loaded, scorer, db, timedelta(seconds=step_seconds), progress.update)
    except ReplayError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    write_incidents(result.incidents, out)
    typer.echo(f"{result.posts} posts, {result.ticks} ticks, {len(result.incidents)} incidents -> {out}")
    bad.exit_if_any()


def _load_config(path: Path):  # noqa: ANN202 - monitor.config.Config
    from monitor.cli.common import load_or_exit

    return load_or_exit(path)
