"""Incident reports as files: self-contained HTML (inline CSS and SVG), Markdown, and CSV.

HTML goes through Jinja2 with autoescape; the chart is our own escaped SVG. Markdown escapes the
characters that would turn post text into markup, links or HTML. CSV cells that a spreadsheet would
run as a formula (starting with = + - @, tab or carriage return, or with one of those after a `,`
`;` or tab, where a spreadsheet using another separator splits the cell) get an apostrophe before
it, every cell is quoted, and
files are UTF-8 with a byte-order mark, so Excel opens Chinese text correctly (Python reads them
with encoding="utf-8-sig"; other tools skip the mark).
"""
from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from pathlib import Path
from typing import Literal

from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup

from monitor.core.escape import http_url
from monitor.core.terminal import plain
from monitor.reports.chart import render_svg, weekly_svg
from monitor.reports.figures import DURATIONS, WeekFigures, format_duration, format_share
from monitor.reports.timeline import Timeline

HERE = Path(__file__).resolve().parent
BOM = "\ufeff"
Format = Literal["html", "md", "csv"]
Table = Literal["events", "posts"]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _hm(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True)  # post text is hostile
    env.filters.update(hm=_hm, dur=format_duration, share=format_share, safe_url=http_url)
    env.tests["cjk"] = lambda text: any("\u4e00" <= c <= "\u9fff" for c in str(text))
    return env


_ENV = environment()


def render_html(t: Timeline) -> str:
    """The incident report as one HTML file with nothing external (opens offline, attaches anywhere)."""
    return _ENV.get_template("report.html").render(t=t, chart=Markup(render_svg(t)))


def render_section(t: Timeline) -> dict[str, Markup]:
    """The web app's incident page parts (its CSS classes): about, chart (with export links), figures, posts."""
    parts = vars(_ENV.get_template("_section.html").module)  # the template's macros by name
    return {"about": Markup(parts["about"](t)), "chart": Markup(parts["chart_part"](t, Markup(render_svg(t)))),
            "figures": Markup(parts["figures_part"](t)), "posts": Markup(parts["posts_part"](t))}


# -- Markdown -------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&#])")


def md_escape(text: object) -> str:
    """Untrusted text as literal Markdown inside a table cell: one line, no markup, no HTML, no controls."""
    flat = plain(" ".join(str(text).split()))
    return _MD_SPECIAL.sub(r"\\\1", flat)


def _md_link(url: str | None, label: str) -> str:
    target = http_url(url)
    if target is None or any(c in target for c in "<> ") or not target.isprintable():
        return md_escape(label)
    return f"[{md_escape(label)}](<{target}>)"


def render_markdown(t: Timeline) -> str:
    i, f = t.incident, t.figures
    lines = [
        f"# Incident {i.id}: {md_escape(i.title or '(untitled)')}",
        "",
        f"Brand **{md_escape(i.brand)}** · severity S{i.severity} · {i.status} · generated {_hm(t.generated_at)}",
        "",
        "## Response",
        "",
        "| Figure | Value | When |",
        "|---|---|---|",
        f"| Estimated start of the rise | {_hm(f.started_at)} | detected {_hm(f.detected_at)} |",
        f"| Time to detect (start → first alert) | {format_duration(f.time_to_detect)} | "
        f"{'first alert ' + _hm(f.first_alert_at) if f.first_alert_at else 'no alert delivered'}"
        f"{f' ({f.alerts_failed} alert(s) failed)' if f.alerts_failed else ''} |",
        f"| Time to acknowledge | {format_duration(f.time_to_acknowledge)} | "
        f"{_hm(f.acknowledged_at) + ' by ' + md_escape(f.acknowledged_by or '?') if f.acknowledged_at else 'not acknowledged'} |",
        f"| Time to first answered post | {format_duration(f.time_to_first_answer)} | "
        f"{_hm(f.first_answer_at) if f.first_answer_at else 'no post answered'} |",
        (f"| Closed by itself (nobody resolved it) | {format_duration(f.time_to_close)} | {_hm(f.resolved_at)} |"
         if f.closed_by_itself else
         f"| Time to resolve | {format_duration(f.time_to_resolve)} | "
         f"{(_hm(f.resolved_at) + (' by ' + md_escape(f.resolved_by) if f.resolved_by else '')) if f.resolved_at else 'still open'} |"),
        f"| Escalations | {f.escalations} | {f'highest level {f.max_level + 1}' if f.escalations else 'none needed'} |",
        f"| Flagged posts answered | {format_share(f.posts.share_answered)} | {f.posts.answered} of {f.posts.flagged} "
        f"answered, {f.posts.dismissed} dismissed, {f.posts.claimed} claimed, {f.posts.unclaimed} unclaimed |",
        f"| Posts answered per agent | {'—' if f.posts.per_agent is None else f'{f.posts.per_agent:.1f}'} | "
        f"{', '.join(f'{md_escape(a)}: {n}' for a, n in f.posts.by_agent.items()) or 'nobody answered'} |",
        "",
        "Response times run from the first alert (or from detection when the incident was never alerted).",
        "",
        "## Mentions around the incident",
        "",
        f"Per {t.bucket_minutes} minute(s), {_hm(t.since)} to {_hm(t.until)}: "
        f"{sum(p.volume for p in t.points)} mentions, {sum(p.negative for p in t.points)} negative, "
        f"{sum(p.expected_negative for p in t.points):.1f} negative expected. "
        f"Peak: {max((p.negative for p in t.points), default=0)} negative in one bucket. "
        "The chart is in the HTML report.",
        *[f"\n{md_escape(n)}" for n in t.notes],
        "",
        f"## Timeline ({len(t.events)} events)",
        "",
        "| When (UTC) | What happened | Details |",
        "|---|---|---|",
        *[f"| {e.at:%Y-%m-%d %H:%M:%S} | {md_escape(e.summary)} | {md_escape(e.details)} |" for e in t.events],
        "",
        f"## Posts ({len(t.posts)})",
        "",
        "| Post | Created (UTC) | Author | Text | State |",
        "|---|---|---|---|---|",
        *[f"| {p.post_id} ({md_escape(p.source)}) | {p.created_at:%Y-%m-%d %H:%M} | {_md_link(p.url, p.author)} | "
          f"{md_escape(p.text)} | {md_escape(p.state_label)} |" for p in t.posts],
        "",
    ]
    return "\n".join(lines)


# -- CSV ------------------------------------------------------------------------------------------


_SPLIT_FORMULA = re.compile(r"([,;\t\r\n])([=+\-@])")


def csv_cell(value: object) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula.

    Also where a spreadsheet might split the cell: Excel in a locale whose list separator is `;`
    reads this comma file by `;`, so `semi;=1+1` would become `semi` and a formula. An apostrophe
    goes before a formula character that follows any separator, not only at the start.
    """
    text = "" if value is None else value.isoformat() if isinstance(value, datetime) else str(value)
    text = _SPLIT_FORMULA.sub(r"\1'\2", text)
    return "'" + text if text.startswith(FORMULA_START) else text


def _csv(header: list[str], rows: list[list[object]]) -> str:
    buffer = io.StringIO()
    # Every cell quoted: a spreadsheet that splits on ";" (many locales) would otherwise read
    # `semi;=1+1` as two cells, the second a formula that no leading apostrophe protects.
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
    writer.writerow(header)
    writer.writerows([csv_cell(v) for v in row] for row in rows)
    return BOM + buffer.getvalue()


def render_csv(t: Timeline, table: Table) -> str:
    if table == "events":
        return _csv(["incident_id", "at", "kind", "actor", "summary", "details"],
                    [[t.incident.id, e.at, e.kind, e.actor, e.summary, e.details] for e in t.events])
    if table == "posts":
        return _csv(["incident_id", "post_id", "source", "created_at", "author", "url", "lang", "text", "state",
                     "handled_by", "handled_at", "answer_url", "urgency"],
                    [[t.incident.id, p.post_id, p.source, p.created_at, p.author, p.url, p.lang, p.text, p.state,
                      p.handled_by, p.handled_at, p.answer_url, p.urgency] for p in t.posts])
    raise ValueError(f"unknown CSV table {table!r}: events or posts")


def render(t: Timeline, fmt: str, table: str = "events") -> tuple[str, str, str]:
    """(body, media type, file name) of the report in `fmt`; ValueError for an unknown format."""
    if fmt == "html":
        return render_html(t), "text/html; charset=utf-8", f"incident-{t.incident.id}.html"
    if fmt == "md":
        return render_markdown(t), "text/markdown; charset=utf-8", f"incident-{t.incident.id}.md"
    if fmt == "csv":
        if table not in ("events", "posts"):
            raise ValueError(f"unknown CSV table {table!r}: events or posts")
        return render_csv(t, table), "text/csv; charset=utf-8", f"incident-{t.incident.id}-{table}.csv"  # type: ignore[arg-type]
    raise ValueError(f"unknown report format {fmt!r}: html, md or csv")


# -- weekly ---------------------------------------------------------------------------------------

LABELS = {"time_to_detect": "detect", "time_to_acknowledge": "acknowledge", "time_to_first_answer": "first answer",
          "time_to_resolve": "resolve"}


def trend_text(value: float | None, kind: str) -> str:
    if value is None:
        return ""
    if abs(value) < 1e-9:
        return " (±0)"
    if kind == "share":
        return f" ({value * 100:+.0f} pts)"
    if kind == "count":
        return f" ({value:+.0f})"
    return f" ({format_duration(value)})"


def weekly_rows(weeks: list[WeekFigures]) -> list[list[str]]:
    """One row per brand and week (header first): medians with their change against the week before."""
    rows = [["brand", "week", "incidents", "acknowledged", *[f"median time to {LABELS[d]}" for d in DURATIONS],
             "posts answered", "answered per agent"]]
    for w in weeks:
        rows.append([
            w.brand, w.label,
            f"{w.incidents}{trend_text(w.trend['incidents'], 'count') if w.incidents or w.trend['incidents'] else ''}",
            str(w.acknowledged),
            *[format_duration(w.medians[d]) + trend_text(w.trend[d], "duration") for d in DURATIONS],
            f"{format_share(w.posts.share_answered)}{trend_text(w.trend['share_answered'], 'share')} "
            f"({w.posts.answered}/{w.posts.flagged})",
            "—" if w.posts.per_agent is None else f"{w.posts.per_agent:.1f}",
        ])
    return rows


def render_weekly_section(weeks: list[WeekFigures], brands: list[str], brand: str | None, count: int) -> Markup:
    """The weekly figures for the web app's page: a table per brand, newest week first."""
    rows = weekly_rows(weeks)
    by_brand: dict[str, list[list[str]]] = {}
    for row in rows[1:]:
        by_brand.setdefault(row[0], []).insert(0, row)
    charts = {name: Markup(weekly_svg([w for w in weeks if w.brand == name])) for name in by_brand}
    return Markup(_ENV.get_template("_weekly.html").render(
        header=rows[0], by_brand=list(by_brand.items()), charts=charts, brands=brands, brand=brand, weeks=count))


def weekly_markdown(weeks: list[WeekFigures]) -> str:
    """The weekly figures as a Markdown table: brand by brand, newest week first (as the web page shows them)."""
    rows = weekly_rows(sorted(weeks, key=lambda w: (w.brand, -w.week.timestamp())))
    out = ["| " + " | ".join(md_escape(c) for c in rows[0]) + " |", "|" + "---|" * len(rows[0])]
    out += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in rows[1:]]
    out.append("")
    out.append("Medians over the week's incidents; in brackets the change against the week before "
               "(negative durations: faster).")
    return "\n".join(out)


def weekly_json(weeks: list[WeekFigures]) -> list[dict[str, object]]:
    return [{
        "brand": w.brand, "week": w.label, "week_start": w.week.isoformat(), "incidents": w.incidents,
        "acknowledged": w.acknowledged,
        "median_seconds": {d: None if w.medians[d] is None else w.medians[d].total_seconds() for d in DURATIONS},  # type: ignore[union-attr]
        "posts": {"flagged": w.posts.flagged, "answered": w.posts.answered, "dismissed": w.posts.dismissed,
                  "share_answered": w.posts.share_answered, "answered_by_agent": w.posts.by_agent,
                  "per_agent": w.posts.per_agent},
        "trend": w.trend,
    } for w in weeks]
