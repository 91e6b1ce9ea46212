"""Plain-text wording shared by every channel (Slack escapes it; console, e-mail and webhooks use it as is)."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from alerts.view import EventView, IncidentView
from monitor.core import wording

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
    return wording.odds(p)


def when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC") if at else "-"


def severity_label(severity: int) -> str:
    return f"SEV-{severity}"


def title_without_brand(brand: str, title: str) -> str:
    """Detection titles start with the brand ("Acme: ..."); the headline names the brand once."""
    prefix = f"{brand}:"
    return title[len(prefix):].strip() if title.startswith(prefix) else title


def headline(view: IncidentView) -> str:
    state = {"open": "", "resolved": " [resolved]", "closed": " [closed]"}.get(view.status, f" [{view.status}]")
    title = title_without_brand(view.brand, view.title) or f"{view.metric} rising"
    return f"{severity_label(view.severity)} {view.brand}: {title}{state}"


def what_moved(view: IncidentView) -> str:
    """The numbers in plain words: now while it is open; once over, how it ended and its peak."""
    if view.status != "open":
        end = ("Closed by itself after " + wording.minutes(view.quiet_minutes) + " without a new signal"
               if view.quiet_minutes is not None else "Over: back to the usual level" if view.back_to_baseline
               else "Over")
        return end + (f"; at its peak, {wording.signal_sentence(view.peak)}" if view.peak else "")
    if view.signals:
        fired = [s for s in view.signals if s.get("fired") and isinstance(s.get("p_value"), (int, float))]
        chance = wording.odds(min(float(s["p_value"]) for s in fired)) if fired else None
        parts = [wording.signal_sentence(s) for s in view.signals] + ([chance] if chance else [])
        return wording.capitalized("; ".join(parts))
    if view.observed is not None:  # an incident whose detail is flat numbers (older rows, tests)
        chance = wording.odds(view.probability)
        return wording.signal_sentence({"detector": "volume", "observed": view.observed, "expected": view.expected,
                                        "window_minutes": view.window_minutes}) + (f"; {chance}" if chance else "")
    return f"{view.metric} rising"


def about_line(view: IncidentView) -> str | None:
    """What the complaint is about: the terms that rose most in its negative posts."""
    return f"About: {', '.join(view.themes)}" if view.themes else None


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
    """One sentence for a timeline event (`wording.event_sentence`; `actor` is inserted as given, e.g.
    a Slack mention, and `escape` is applied to every other value taken from the event)."""
    return wording.event_sentence(event.kind, event.data, event.actor, escape, who=actor)
