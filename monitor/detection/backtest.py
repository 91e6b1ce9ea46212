"""`flarewatch backtest`: the volume detector on a plain bucketed count series, no database.

Input: CSV with `timestamp,value` (as the NAB realTweets files: evenly spaced buckets, timestamps
in UTC with or without an offset). Output: `timestamp,value,anomaly_score,alert`:

- anomaly_score in [0, 1): the calibrated tail probability P of the bucket's strongest window on a
  log scale, -ln P / (-ln P - ln alpha); 0.5 exactly at the alert level, ordered above it too;
- alert: 1 where a person would be alerted: an incident opens, or its severity rises (the same
  lifecycle as the daemon's, `lifecycle`: an incident stays open until the closing window is back
  at or below the baseline with no firing minute left in it, so one burst is one incident).

The baseline and calibration are the daemon's, learning hour by hour (`windows.fold_hour`); the
tests run a whole hour at a time with numpy (`windows.hour_tests`). Deterministic.
"""
from __future__ import annotations

import csv
import math
import statistics
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path


from monitor.detection import calibration
from monitor.detection.baseline import SeasonalBaseline, floor_hour
from monitor.detection.lifecycle import back_to_baseline, closing_window, severity_for
from monitor.detection.settings import DetectionSettings
from monitor.detection.stats import anomaly_score
from monitor.detection.windows import HourTests, alert_level, fold_hour, hour_tests, tail_state


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
    incident: int = 0  # the incident open at this bucket, numbered from 1 (0: none)


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
    baseline = SeasonalBaseline({"negative": settings.cold_start_posts_per_hour}, settings.windows_minutes,
                                settings.baseline_memory_weeks)
    levels = settings.severity_excess_posts
    out: list[Scored] = []
    pending: tuple[datetime, list[float], HourTests | None] | None = None  # the last hour, to learn
    severity = 0  # 0: no incident open
    closing = closing_window(settings.windows_minutes)
    last_fired = points[0].at
    peak = 0.0
    incidents = 0
    i = 0
    while i < len(points):
        hour = floor_hour(points[i].at)
        j = i
        while j < len(points) and floor_hour(points[j].at) == hour:
            j += 1
        if pending is not None:
            fold_hour(baseline, pending[0], {"negative": pending[1]}, bucket, settings, tests=pending[2],
                      false_alarms_per_week=budget)
        values = [p.value for p in points[i:j]]
        if baseline.hours < settings.warmup_hours:
            out += [Scored(p, 0.0, False) for p in points[i:j]]
            pending = (hour, values, None)
            i = j
            continue
        tests = hour_tests(baseline, hour, {"negative": values}, bucket, settings)
        alpha = alert_level(baseline, settings, budget, "volume", bucket)
        p_cal = calibration.tail_probability(tail_state(baseline, "volume"), tests.surprise["volume"])
        scores = anomaly_score(p_cal, alpha)
        fired = p_cal <= alpha
        fired_short = calibration.tail_probability(tail_state(baseline, "volume"), tests.short_surprise["volume"]) <= alpha
        level = math.exp(-calibration.surprise_for(tail_state(baseline, "volume"), alpha))
        beyond = tests.beyond_threshold(level, settings.min_negative_posts) if severity or fired.any() else None
        for k, point in enumerate(points[i:j]):
            alert = False
            current = incidents if severity else 0
            if beyond is not None:
                excess = float(beyond[k])
            if severity == 0:
                if fired[k]:
                    severity, peak, alert = severity_for(excess, levels), excess, True
                    last_fired = point.at
                    incidents += 1
            else:
                peak = max(peak, excess)
                raised = max(severity, severity_for(peak, levels))
                if raised > severity:
                    severity, alert = raised, True
                if fired_short[k]:
                    last_fired = point.at
                if back_to_baseline(bool(fired[k]), float(tests.widest_excess[k]),
                                    (point.at - last_fired).total_seconds() / 60.0 + bucket, closing):
                    severity, peak = 0, 0.0
            out.append(Scored(point, float(scores[k]), alert, incidents if severity or current else 0))
        pending = (hour, values, tests)
        i = j
    return out


def write_scored(rows: list[Scored], path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["timestamp", "value", "anomaly_score", "alert"])
        for row in rows:
            value = int(row.point.value) if row.point.value.is_integer() else row.point.value
            writer.writerow([row.point.raw_timestamp, value, f"{row.anomaly_score:.6f}", int(row.alert)])
