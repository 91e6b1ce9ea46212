"""The weekly digest for Slack: each brand's recent weeks as text, for the default channel.

The daemon's weekly job and `flarewatch report weekly --slack` post it with `alerts.slack.post_message`.

Slack gets text (mrkdwn) with a link to the web app's incidents, not the chart: the SVG chart is for
pages and files, and the figures read fine as a few lines. Brand names are escaped like post text.
"""
from __future__ import annotations

from typing import Any

from monitor.core.escape import escape_mrkdwn, link
from monitor.reports.export import LABELS, trend_text
from monitor.reports.figures import DURATIONS, WeekFigures, format_duration, format_share


def _line(w: WeekFigures) -> str:
    if w.incidents == 0:
        return f"*{escape_mrkdwn(w.label)}*: no incidents{trend_text(w.trend['incidents'], 'count')}"
    times = " · ".join(f"{LABELS[d]} {format_duration(w.medians[d])}{trend_text(w.trend[d], 'duration')}" for d in DURATIONS)
    answered = f"answered {format_share(w.posts.share_answered)}{trend_text(w.trend['share_answered'], 'share')}"
    return (f"*{escape_mrkdwn(w.label)}*: {w.incidents} incident{'s' if w.incidents != 1 else ''}"
            f"{trend_text(w.trend['incidents'], 'count')} · {times} · {answered} ({w.posts.answered}/{w.posts.flagged})")


def digest_message(weeks: list[WeekFigures], web_base_url: str | None = None) -> dict[str, Any]:
    """`text` and `blocks` for chat.postMessage: one section per brand, one line per week."""
    brands: dict[str, list[WeekFigures]] = {}
    for w in weeks:
        brands.setdefault(w.brand, []).append(w)
    title = "Weekly incident response"
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": title}}]
    if not brands:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "No incidents in these weeks."}})
    for brand, rows in brands.items():
        body = f"*{escape_mrkdwn(brand, 200)}*\n" + "\n".join(_line(w) for w in rows)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": body[:2900]}})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text":
        "Medians per ISO week (UTC); in brackets the change against the week before (negative: faster)."
        + (f" {link(web_base_url.rstrip('/') + '/incidents', 'Incidents')}" if web_base_url else "")}]})
    summary = "; ".join(f"{escape_mrkdwn(b, 200)}: {sum(w.incidents for w in rows)} incidents" for b, rows in brands.items())
    return {"text": f"{title}: {summary or 'no incidents'}", "blocks": blocks[:50]}
