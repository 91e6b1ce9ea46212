"""The incident chart as hand-written SVG: one line chart with markers needs no plotting library.

The same markup goes into the web page, the exported HTML file and any browser. Every piece of
text is XML-escaped (labels carry people's names), and only presentation attributes are used, no
`style` attributes, so the page's Content-Security-Policy (no inline styles) does not strip them.
Each series is a `<polyline data-series="...">`, each marker a `<g class="marker" data-kind="...">`.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from xml.sax.saxutils import escape, quoteattr

from monitor.reports.figures import WeekFigures
from monitor.reports.timeline import Timeline

WIDTH, HEIGHT = 960, 400
LEFT, RIGHT, TOP, BOTTOM = 56, 20, 64, 72  # TOP grows when the marker labels need more rows
ROW = 15  # height of one row of marker labels (font-size 11 text boxes are about 13.3 px tall)
FONT = "system-ui, -apple-system, 'Segoe UI', 'Noto Sans', 'Noto Sans CJK SC', sans-serif"
CHAR_WIDTH = 6.6  # at font-size 11, a generous average, so estimated label boxes never undershoot


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    color: str
    dash: str | None
    width: float


SERIES = (
    Series("volume", "all mentions", "#4a6fa5", None, 1.6),
    Series("negative", "negative", "#c0392b", None, 2.0),
    Series("expected_volume", "expected mentions", "#4a6fa5", "5 4", 1.2),
    Series("expected_negative", "expected negative", "#c0392b", "5 4", 1.2),
    Series("threshold", "detection threshold", "#e67e22", "2 3", 1.6),
)
MARKER_COLORS = {
    "started": "#b03a2e", "detected": "#8e44ad", "alert": "#d35400", "alert_failed": "#b3261e", "escalated": "#c0392b",
    "severity": "#7f8c8d",
    "acknowledged": "#2980b9", "first_answer": "#27ae60", "resolved": "#16a085", "closed": "#2c3e50",
}
TICK_MINUTES = (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080)


def _nice_max(value: float) -> tuple[float, float]:
    """An axis maximum >= value and a tick step of 1, 2 or 5 times a power of ten (about 5 ticks)."""
    value = max(value, 1.0)
    raw = value / 5
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    step = max(step, 1.0) if value >= 5 else step
    return step * math.ceil(value / step), step


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class Label:
    x: float  # where the text is anchored
    row: int
    anchor: str  # start | end
    left: float
    right: float


def layout_labels(xs: list[float], texts: list[str], min_x: float, max_x: float) -> list[Label]:
    """Marker labels on rows above the plot, never overlapping: each takes the lowest row where its box
    is free (as many rows as needed); a label that would run past the right edge ends at its line."""
    rows: list[list[tuple[float, float]]] = []
    out = []
    for xx, text in zip(xs, texts):
        w = len(text) * CHAR_WIDTH
        if xx + 3 + w <= max_x:
            anchor, left, right, at = "start", xx + 3, xx + 3 + w, xx + 3
        else:
            anchor, left, right, at = "end", max(min_x, xx - 3 - w), xx - 3, xx - 3
        row = next((i for i, spans in enumerate(rows) if all(right + 6 <= a or left >= b + 6 for a, b in spans)), None)
        if row is None:
            rows.append([])
            row = len(rows) - 1
        rows[row].append((left, right))
        out.append(Label(at, row, anchor, left, right))
    return out


def render_svg(t: Timeline, width: int = WIDTH, height: int = HEIGHT) -> str:
    span = (t.until - t.since).total_seconds() or 60.0
    plot_w = width - LEFT - RIGHT

    def x(when: datetime) -> float:
        return LEFT + plot_w * min(max((when - t.since).total_seconds() / span, 0.0), 1.0)

    labels = layout_labels([x(m.at) for m in t.markers], [m.label for m in t.markers], 0, width - 2)
    rows = max((lb.row for lb in labels), default=0) + 1
    top = max(TOP, 18 + ROW * rows)
    height += top - TOP
    plot_h = height - top - BOTTOM

    values = [max(p.volume, p.negative, p.expected_volume, p.expected_negative, p.threshold or 0.0) for p in t.points]
    ymax, step = _nice_max(max(values, default=1.0) * 1.05)

    def y(value: float) -> float:
        return top + plot_h * (1 - min(value, ymax) / ymax)

    unit = "minute" if t.bucket_minutes == 1 else f"{t.bucket_minutes} minutes"
    title = f"Incident {t.incident.id} ({t.incident.brand}): mentions per {unit}"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="incident-chart" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label={quoteattr(title)} font-family={quoteattr(FONT)} font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
    ]
    # The incident itself: from the estimated start to its close (or the end of the chart).
    start_x, end_x = x(t.incident.started_at), x(t.incident.closed_at or t.until)
    out.append(f'<rect class="incident-span" x="{start_x:.1f}" y="{top}" width="{max(end_x - start_x, 1):.1f}" '
               f'height="{plot_h}" fill="#fdecea"/>')
    # Y grid and labels.
    tick = 0.0
    while tick <= ymax + 1e-9:
        yy = y(tick)
        out.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{LEFT - 6}" y="{yy + 4:.1f}" text-anchor="end" fill="#555">{_num(tick)}</text>')
        tick += step
    out.append(f'<text x="14" y="{top + plot_h / 2:.0f}" fill="#555" text-anchor="middle" '
               f'transform="rotate(-90 14 {top + plot_h / 2:.0f})">posts per {escape(unit)}</text>')
    out += _x_axis(t, x, plot_h, top)
    # Series, at bucket centres.
    half = timedelta(minutes=t.bucket_minutes / 2)
    for s in SERIES:
        pts = [(x(p.start + half), getattr(p, s.key)) for p in t.points]
        pts = [(px, py) for px, py in pts if py is not None]
        if not pts:
            continue
        coords = " ".join(f"{px:.1f},{y(py):.1f}" for px, py in pts)
        dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
        out.append(f'<polyline data-series="{s.key}" fill="none" stroke="{s.color}" stroke-width="{s.width}"'
                   f'{dash} stroke-linejoin="round" points="{coords}"><title>{escape(s.label)}</title></polyline>')
    out += _markers(t, x, plot_h, top, labels)
    out.append(f'<rect x="{LEFT}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>')
    out += _legend(t, height)
    out.append("</svg>")
    return "\n".join(out)


def _x_axis(t: Timeline, x: Callable[[datetime], float], plot_h: int, top: int) -> list[str]:
    span_min = (t.until - t.since).total_seconds() / 60
    every = next((m for m in TICK_MINUTES if span_min / m <= 8), TICK_MINUTES[-1])
    first = t.since.replace(second=0, microsecond=0)
    offset = -(first.hour * 60 + first.minute) % min(every, 1440)  # ticks on round times of day
    tick = first + timedelta(minutes=offset)
    out, last_day = [], None
    base = top + plot_h
    while tick <= t.until:
        xx = x(tick)
        label = tick.strftime("%H:%M")
        if tick.date() != last_day:
            label = tick.strftime("%d %b %H:%M")
            last_day = tick.date()
        out.append(f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{base}" y2="{base + 4}" stroke="#999"/>')
        out.append(f'<text x="{xx:.1f}" y="{base + 16}" text-anchor="middle" fill="#555">{escape(label)}</text>')
        tick += timedelta(minutes=every)
    out.append(f'<text x="{LEFT + (WIDTH - LEFT - RIGHT) / 2:.0f}" y="{base + 30}" text-anchor="middle" '
               f'fill="#777">time (UTC)</text>')
    return out


def _markers(t: Timeline, x: Callable[[datetime], float], plot_h: int, top: int, labels: list[Label]) -> list[str]:
    out = []
    for m, lb in zip(t.markers, labels):
        xx = x(m.at)
        color = MARKER_COLORS.get(m.kind, "#333")
        ly = top - 8 - ROW * lb.row
        out.append(
            f'<g class="marker" data-kind={quoteattr(m.kind)} data-at={quoteattr(m.at.isoformat())}>'
            f"<title>{escape(m.label)} at {m.at:%Y-%m-%d %H:%M:%S} UTC</title>"
            f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{ly + 2}" y2="{top + plot_h}" stroke="{color}" '
            f'stroke-width="1.2" stroke-dasharray="3 2"/>'
            f'<circle cx="{xx:.1f}" cy="{top}" r="3" fill="{color}"/>'
            f'<text x="{lb.x:.1f}" y="{ly}" fill="{color}" text-anchor="{lb.anchor}">{escape(m.label)}</text></g>'
        )
    return out


def _legend(t: Timeline, height: int) -> list[str]:
    out: list[str] = []
    lx: float = LEFT
    ly = height - 14
    for s in SERIES:
        label = s.label
        if s.key == "threshold":
            if t.threshold_window_minutes is None:
                continue
            label = f"detection threshold (sustained {t.threshold_window_minutes} min)"
        dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
        out.append(f'<line x1="{lx}" x2="{lx + 22}" y1="{ly - 4}" y2="{ly - 4}" stroke="{s.color}" '
                   f'stroke-width="{s.width + 0.4}"{dash}/>')
        out.append(f'<text x="{lx + 27}" y="{ly}" fill="#333">{escape(label)}</text>')
        lx += 27 + len(label) * CHAR_WIDTH + 18
    return out


# -- the weekly trend ------------------------------------------------------------------------------

TREND_SERIES = (("time_to_detect", "detect", "#8e44ad"), ("time_to_acknowledge", "acknowledge", "#2980b9"),
                ("time_to_first_answer", "first answer", "#27ae60"), ("time_to_resolve", "resolve", "#2c3e50"))


def weekly_svg(weeks: list[WeekFigures], width: int = 720, height: int = 240) -> str:
    """One brand's weekly medians (minutes) as lines, oldest week on the left; a week without the
    figure leaves a gap rather than a zero."""
    weeks = sorted(weeks, key=lambda w: w.week)
    left, right, top, bottom = 52, 16, 16, 58
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [median.total_seconds() / 60 for w in weeks for key, _, _ in TREND_SERIES
              if (median := w.medians.get(key)) is not None]
    ymax, step = _nice_max(max(values, default=1.0) * 1.05)

    def x(i: int) -> float:
        return left + (plot_w * (i + 0.5) / len(weeks) if weeks else 0)

    def y(v: float) -> float:
        return top + plot_h * (1 - min(v, ymax) / ymax)

    brand = weeks[0].brand if weeks else ""
    title = f"{brand}: median minutes to detect, acknowledge, first answer and resolve, per week"
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="weekly-chart" viewBox="0 0 {width} {height}" width="100%" '
           f'role="img" aria-label={quoteattr(title)} font-family={quoteattr(FONT)} font-size="11">',
           f"<title>{escape(title)}</title>", f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>']
    tick = 0.0
    while tick <= ymax + 1e-9:
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" fill="#555">{_num(tick)}</text>')
        tick += step
    out.append(f'<text x="12" y="{top + plot_h / 2:.0f}" fill="#555" text-anchor="middle" '
               f'transform="rotate(-90 12 {top + plot_h / 2:.0f})">minutes</text>')
    for i, w in enumerate(weeks):
        out.append(f'<text x="{x(i):.1f}" y="{top + plot_h + 14}" text-anchor="middle" fill="#555">'
                   f'{escape(w.label.split("-")[1])}</text>')
    for key, label, color in TREND_SERIES:  # noqa: B007 - key is the series name above
        runs: list[list[str]] = [[]]
        for i, w in enumerate(weeks):
            value = w.medians.get(key)
            if value is None:
                runs.append([])
                continue
            runs[-1].append(f"{x(i):.1f},{y(value.total_seconds() / 60):.1f}")
        for run in (r for r in runs if r):
            out.append(f'<polyline data-series="{key}" fill="none" stroke="{color}" stroke-width="2" '
                       f'points="{" ".join(run)}"><title>{escape(label)}</title></polyline>')
            out += [f'<circle cx="{pt.split(",")[0]}" cy="{pt.split(",")[1]}" r="2.5" fill="{color}"/>' for pt in run]
    lx: float = left
    for key, label, color in TREND_SERIES:  # noqa: B007 - key is the series name above
        out.append(f'<line x1="{lx}" x2="{lx + 18}" y1="{height - 14}" y2="{height - 14}" stroke="{color}" stroke-width="2.4"/>')
        out.append(f'<text x="{lx + 23}" y="{height - 10}" fill="#333">{escape(label)}</text>')
        lx += 23 + len(label) * CHAR_WIDTH + 18
    out.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>')
    out.append("</svg>")
    return "\n".join(out)
