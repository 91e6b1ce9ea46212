"""Plain-text wording shared by every channel (Slack escapes it; console, e-mail and webhooks use it as is)."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from alerts.view import EventView, IncidentView

SPARK = "▁▂▃▄▅▆▇█"


def sparkline(counts: list[int]) -> str:
    if not counts:
        return ""
    top = max(counts)
    if top <= 0:
        return SPARK[0] * len(counts)
    return "".join(SPARK[min(len(SPARK) - 1, round(c / top * (len(SPARK) - 1)))] for c in counts)


def _num(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() or value >= 100 else f"{value:,.1f}"


def probability_words(p: float | None) -> str | None:
    """A tail probability as a person would say it."""
    if p is None or p < 0 or p > 1:
        return None
    if p == 0:
        return "essentially impossible by chance"
    odds = 1 / p
    if odds < 2:
        return "quite likely by chance alone"
    shown = f"{odds:,.0f}" if odds < 1e6 else f"{odds:.1e}".replace("e+0", "e").replace("e+", "e")
    return f"about 1 in {shown} odds of happening by chance"


def when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC") if at else "-"


def severity_label(severity: int) -> str:
    return f"SEV-{severity}"


def headline(view: IncidentView) -> str:
    state = {"open": "", "resolved": " [resolved]", "closed": " [closed]"}.get(view.status, f" [{view.status}]")
    title = view.title or f"{view.metric} spike"
    return f"{severity_label(view.severity)} {view.brand}: {title}{state}"


def what_moved(view: IncidentView) -> str:
    parts: list[str] = []
    if view.observed is not None:
        window = f" in {_num(view.window_minutes)} min" if view.window_minutes else ""
        parts.append(f"{_num(view.observed)} {view.metric}{window}")
        if view.expected is not None:
            parts[-1] += f", expected about {_num(view.expected)}"
    odds = probability_words(view.probability)
    if odds:
        parts.append(odds)
    return "; ".join(parts) if parts else f"{view.metric} rising"


def state_line(view: IncidentView, now: datetime | None = None) -> str:
    bits = [f"status {view.status}", f"opened {when(view.opened_at)}"]
    if view.acknowledged_by:
        bits.append(f"acknowledged by {view.acknowledged_by} at {when(view.acknowledged_at)}")
    if view.snoozed_until and (now is None or view.snoozed_until > now):
        bits.append(f"snoozed until {when(view.snoozed_until)}")
    if view.escalation_level > 0:
        bits.append(f"escalation level {view.escalation_level + 1}")
    return ", ".join(bits)


def event_line(event: EventView, actor: str | None = None, escape: Callable[[str], str] = str) -> str:
    """One sentence for a timeline event.

    `actor` is inserted as given (Slack passes a mention); `escape` is applied to every other value
    taken from the event, so the caller can make the whole line safe for its markup.
    """
    who = actor or escape(event.actor or "flarewatch")
    data = {k: escape(v) if isinstance(v, str) else v for k, v in event.data.items()}
    kind = event.kind
    if kind == "opened":
        return "Incident opened"
    if kind == "escalated":
        return (f"Escalated to level {int(data.get('level', 0)) + 1}: not acknowledged after "
                f"{_num(float(data.get('after_minutes', 0)))} min")
    if kind == "acknowledged":
        return f"Acknowledged by {who}"
    if kind == "snoozed":
        return f"Snoozed by {who} until {data.get('until', '?')}"
    if kind == "snooze_ended":
        return "Snooze ended, still not acknowledged"
    if kind == "resolved":
        return f"Resolved by {who}"
    if kind == "closed":
        if "quiet_minutes" in data:
            return f"Closed: no signal for {data['quiet_minutes']} min"
        return f"Closed ({data.get('reason', 'quiet again')})"
    if kind == "post_claimed":
        return f"{who} claimed a post by {data.get('author', '?')} to answer"
    if kind == "silenced":
        return f"{who} silenced alerts for this brand until {data.get('until', '?')}"
    if kind == "severity_changed":
        return f"Severity up: SEV-{data.get('from', '?')} to SEV-{data.get('to', '?')}"
    if kind == "signal":
        signal = data.get("signal") if isinstance(event.data.get("signal"), dict) else {}
        return (f"New signal: {escape(str(signal.get('detector', '?')))} over "
                f"{signal.get('window_minutes', '?')} min")
    if kind == "merged":
        return f"Merged incident #{data['from']} into this one" if "from" in data else f"Merged into #{data.get('into')}"
    if kind == "alerted":
        return "Silence over: incident alerted"
    numbers = [f"{k} {v}" for k, v in data.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    suffix = f" ({', '.join(numbers[:4])})" if numbers else ""
    return f"Update: {escape(kind.replace('_', ' '))}{suffix}"
