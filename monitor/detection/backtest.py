"""`flarewatch backtest`: the volume detector on a plain bucketed count series, no database.

Input: CSV with `timestamp,value` (as the NAB realTweets files: evenly spaced buckets, timestamps
in UTC with or without an offset). Output: `timestamp,value,anomaly_score,alert`, where
anomaly_score in [0, 1] is the strongest window's -log p relative to its threshold (1 = fires)
and alert is 1 on the bucket where an incident opens (the same lifecycle as the daemon: one alert,
then quiet until `quiet_minutes_to_close` without firing). The baseline is the daemon's,
learning hour by hour after the lag and skipping hours inside incidents.
"""
from __future__ import annotations

import csv
import statistics
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from monitor.detection.baseline import HOUR, SeasonalBaseline, floor_hour
from monitor.detection.settings import DetectionSettings
from monitor.detection.stats import score_from_p
from monitor.detection.windows import BucketRow, window_signals


class SeriesError(ValueError):
    """A series file that cannot be read, with the line that is wrong."""


@dataclass(frozen=True)
class Point:
    raw_timestamp: str
    at: datetime
    value: float


@dataclass(frozen=True)
class Scored:
    point: Point
    anomaly_score: float
    alert: bool


def _parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def read_series(path: Path) -> list[Point]:
    """Read `timestamp,value` rows; errors name the file and line."""
    try:
        handle = path.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise SeriesError(f"{path}: cannot read: {exc.strerror}") from None
    points: list[Point] = []
    with handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"timestamp", "value"} <= set(reader.fieldnames):
            raise SeriesError(f"{path}: needs a header with the columns timestamp,value")
        for line, row in enumerate(reader, start=2):
            try:
                point = Point(row["timestamp"], _parse_time(row["timestamp"]), float(row["value"]))
            except (TypeError, ValueError):
                raise SeriesError(f"{path}:{line}: expected an ISO timestamp and a number, got {row}") from None
            if point.value < 0:
                raise SeriesError(f"{path}:{line}: counts cannot be negative ({point.value})")
            if points and point.at <= points[-1].at:
                raise SeriesError(f"{path}:{line}: timestamps must increase ({point.raw_timestamp})")
            points.append(point)
    if len(points) < 2:
        raise SeriesError(f"{path}: needs at least two rows")
    return points


def bucket_minutes_of(points: list[Point]) -> int:
    """The series' bucket length: the median spacing, in whole minutes."""
    gaps = [(b.at - a.at).total_seconds() / 60 for a, b in zip(points, points[1:])]
    return max(1, round(statistics.median(gaps)))


def run_backtest(points: list[Point], settings: DetectionSettings, false_alarms_per_week: float | None = None) -> list[Scored]:
    settings = settings.model_copy(update={"detectors": ["volume"]})  # the only test a count series allows
    budget = false_alarms_per_week or settings.false_alarms_per_week
    bucket = bucket_minutes_of(points)
    step = timedelta(minutes=bucket)
    baseline = SeasonalBaseline({"negative": settings.cold_start_posts_per_hour}, settings.windows_minutes,
                                settings.baseline_memory_weeks)
    lag = timedelta(minutes=settings.baseline_lag_minutes)
    exclusion = timedelta(hours=settings.incident_exclusion_hours)
    quiet = timedelta(minutes=settings.quiet_minutes_to_close)
    horizon = timedelta(minutes=max(settings.windows_minutes))

    recent: deque[BucketRow] = deque()
    hours: dict[datetime, list[float]] = {}
    next_hour: datetime | None = None  # the next hour to learn
    incidents: list[list[datetime | None]] = []  # [started, closed]
    open_since: datetime | None = None
    last_fired: datetime | None = None
    out: list[Scored] = []
    for point in points:
        now = point.at + step
        hour = floor_hour(point.at)
        hours.setdefault(hour, []).append(point.value)
        if next_hour is None:
            next_hour = hour + HOUR if point.at != hour else hour  # learn whole hours only
        while next_hour + HOUR + lag <= now:
            started_closed = [(s, c) for s, c in incidents]
            excluded = any(s < next_hour + HOUR and (c is None or c > next_hour) and next_hour < s + exclusion
                           for s, c in started_closed)  # type: ignore[operator]
            values = hours.pop(next_hour, [])
            baseline.learn_hour(next_hour, {"negative": values}, bucket, excluded)
            next_hour += HOUR
        for old in [h for h in hours if h < next_hour]:
            del hours[old]

        recent.append(BucketRow(point.at, point.value, None))  # type: ignore[arg-type]
        while recent and recent[0].start < now - horizon:
            recent.popleft()
        signals = window_signals(list(recent), now, baseline, settings, budget, bucket)
        fired = [s for s in signals if s.fired]
        score = max((score_from_p(s.p_value, s.threshold) for s in signals), default=0.0)
        alert = False
        if fired:
            last_fired = now
            if open_since is None:
                open_since = min(s.window_start for s in fired)
                incidents.append([open_since, None])
                alert = True
        elif open_since is not None and last_fired is not None and now - last_fired >= quiet:
            incidents[-1][1] = now
            open_since = None
        out.append(Scored(point, score, alert))
    return out


def write_scored(rows: list[Scored], path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["timestamp", "value", "anomaly_score", "alert"])
        for row in rows:
            value = int(row.point.value) if row.point.value.is_integer() else row.point.value
            writer.writerow([row.point.raw_timestamp, value, f"{row.anomaly_score:.6f}", int(row.alert)])
