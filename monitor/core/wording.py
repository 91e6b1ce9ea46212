"""Plain words for detection's numbers and the incident timeline, shared by alerts, pages and reports.

A manager reads "12 negative posts in 15 minutes, usually about 1", not `volume 15m: 12.0 vs 0.014
expected (p=7.174e-21)`; the technical line stays available (`signal_details`) for whoever opens
the details. The functions take detection's signal dicts (`Signal.as_dict()`) as they are and
leave out whatever a signal lacks. Nothing here escapes: callers escape for their markup (`escape`
is applied to every string taken from event data, so a caller can make a whole line safe).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Escape = Callable[[str], str]
UNFIRED_EXCESS = 5.0  # negative posts above usual that make an unfired count test worth a sentence


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def count(value: float) -> str:
    """A count as people write it: 12, 1,204, 2.5 (one decimal only below 10 and when not whole)."""
    if float(value).is_integer() or abs(value) >= 10:
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def plural(n: float, one: str, many: str | None = None) -> str:
    return f"{count(n)} {one if n == 1 else (many or one + 's')}"


def minutes(value: float | None) -> str:
    """`15 minutes`, `1 hour`, `90 minutes`, `2 hours`, `3 days`."""
    if value is None:
        return "a while"
    m = float(value)
    if m >= 1440 and m % 1440 == 0:
        return plural(m / 1440, "day")
    if m >= 60 and m % 60 == 0:
        return plural(m / 60, "hour")
    return plural(m, "minute")


def usually(expected: float | None) -> str:
    """What a normal hour looks like, never "about 0.0": none, almost none, about N."""
    if expected is None:
        return ""
    if expected <= 0:
        return "usually none"
    if expected < 0.5:
        return "usually almost none"
    return f"usually about {count(round(expected) if expected >= 10 else round(expected, 1))}"


def odds(p: float | None) -> str | None:
    """A tail probability as a person would say it (for the details, not the headline)."""
    if p is None or p < 0 or p > 1:
        return None
    if p == 0:
        return "essentially impossible by chance"
    chance = 1 / p
    if chance < 2:
        return "quite likely by chance alone"
    shown = f"{chance:,.0f}" if chance < 1e6 else f"{chance:.1e}".replace("e+0", "e").replace("e+", "e")
    return f"about 1 in {shown} odds of happening by chance"


def signal_sentence(signal: Mapping[str, Any], escape: Escape = str) -> str:
    """One signal in plain words: what was seen, over what time, against what is usual."""
    detector = signal.get("detector")
    observed, expected = _number(signal.get("observed")), _number(signal.get("expected"))
    window = _number(signal.get("window_minutes"))
    if detector == "viral":
        followers = _number(signal.get("followers"))
        who = f" from an account with {plural(followers, 'follower')}" if followers else ""
        seen = f": {plural(observed, 'repost or reply', 'reposts and replies')}" if observed is not None else ""
        usual = f" ({usually(expected).replace('usually', 'a post usually draws')})" if expected is not None else ""
        return f"a negative post{who} is spreading{seen}{usual}"
    if observed is None:
        return "Negative posts are rising"
    span = f" in {minutes(window)}" if window else ""
    if detector == "share":
        volume, share, usual_share = (_number(signal.get(k)) for k in ("volume", "share", "usual_share"))
        if volume and share is not None:
            line = f"{count(observed)} of {plural(volume, 'post')}{span} were negative ({share * 100:.0f} %)"
            return line + (f", usually {usual_share * 100:.0f} %" if usual_share is not None else "")
    line = f"{plural(observed, 'negative post')}{span}"
    return line + (f", {usually(expected)}" if expected is not None else "")


def capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def signal_details(signal: Mapping[str, Any]) -> str:
    """The technical line behind a signal: detector, window, counts, p-value against its threshold."""
    detector, window = signal.get("detector", "?"), signal.get("window_minutes")
    parts = [f"{detector} test" + (f", {window}-minute window" if window and detector != "viral" else "")]
    if signal.get("observed") is not None:
        parts.append(f"observed {signal.get('observed')}, expected {signal.get('expected')}")
    p, threshold = _number(signal.get("p_value")), _number(signal.get("threshold"))
    if p is not None:
        parts.append(f"p = {p:.3g}" + (f" (fires at ≤ {threshold:.3g})" if threshold is not None else ""))
        words = odds(p)
        if words:
            parts.append(words)
    if signal.get("window_start"):
        parts.append(f"window from {signal.get('window_start')}")
    return "; ".join(parts)


def headline_signals(signals: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The signals worth a sentence: the count test with the largest excess (severity follows it),
    then the most surprising spreading post. Fired tests first; an unfired count test is shown only
    when it carries a real excess (it is what raised the severity)."""
    counts = [s for s in signals if s.get("detector") in ("volume", "share")]

    def excess(s: Mapping[str, Any]) -> float:
        return (_number(s.get("observed")) or 0.0) - (_number(s.get("expected")) or 0.0)

    def clear_rise(s: Mapping[str, Any]) -> bool:  # an unfired test worth saying: well above usual
        return excess(s) >= UNFIRED_EXCESS and (_number(s.get("observed")) or 0) >= 2 * (_number(s.get("expected")) or 0)

    fired = [s for s in counts if s.get("fired")]
    best = max(fired or [s for s in counts if clear_rise(s)], key=lambda s: (s.get("detector") == "volume", excess(s)),
               default=None)
    viral = [s for s in signals if s.get("detector") == "viral" and s.get("fired", True)]
    shown = [best] if best is not None else []
    if viral:
        shown.append(min(viral, key=lambda s: _number(s.get("p_value")) or 1.0))
    return shown


# -- timeline events ------------------------------------------------------------------------------

def _signals_of(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    signals = data.get("signals")
    found = signals if isinstance(signals, list) else [data.get("signal")]
    return [s for s in found if isinstance(s, Mapping)]


def event_sentence(kind: str, data: Mapping[str, Any], actor: str | None = None, escape: Escape = str,
                   who: str | None = None) -> str:
    """One sentence for a timeline event (incident or post events).

    `who` is inserted as given (Slack passes a mention); otherwise the actor is escaped. Numbers come
    in plain words; `event_details` has the technical ones.
    """
    name = who or escape(actor or "flarewatch")
    d = {k: escape(v) if isinstance(v, str) else v for k, v in data.items()}
    post = f"post {d['post_id']}" if d.get("post_id") is not None else "this post"
    signals = [signal_sentence(s) for s in headline_signals(_signals_of(data))]
    numbers = f": {escape('; '.join(signals))}" if signals else ""
    if kind == "opened":
        severity = f" at SEV-{d['severity']}" if d.get("severity") is not None else ""
        return f"Incident opened{severity}{numbers}"
    if kind == "signal":
        return f"Another test fired{numbers}"
    if kind == "severity_changed":  # severity follows the count's excess over usual, so that is the reason
        more = _number(d.get("excess"))
        why = f": about {plural(round(more), 'negative post')} more than usual" if more is not None and more >= 1 else numbers
        return f"Severity up: SEV-{d.get('from', '?')} to SEV-{d.get('to', '?')}{why}"
    if kind == "escalated":
        level = _number(d.get("level"))
        after = _number(d.get("after_minutes"))
        return (f"Escalated to level {count(level + 1) if level is not None else '?'}: not acknowledged after "
                f"{minutes(after)}")
    if kind == "acknowledged":
        return f"Acknowledged by {name}"
    if kind == "snoozed":
        return f"Snoozed by {name} until {d.get('until', '?')}"
    if kind == "snooze_ended":
        return "Snooze ended, still not acknowledged"
    if kind == "resolved":
        return f"Resolved by {name}"
    if kind == "reopened":
        return f"Reopened by {name}"
    if kind == "assigned":
        return f"{name} assigned the incident to {d.get('owner', '?')}"
    if kind == "note":
        return f"Note from {name}: {d.get('text', '')}"
    if kind == "closed":
        if "back_to_baseline" in d:
            return "Closed by itself: negative posts are back to the usual level"
        if "quiet_minutes" in d:
            return f"Closed by itself: no new signal for {minutes(_number(d['quiet_minutes']))}"
        return f"Closed ({d.get('reason', 'quiet again')})"
    if kind == "merged":
        return f"Incident #{d['from']} merged into this one" if "from" in d else f"Merged into incident #{d.get('into')}"
    if kind in ("alert_failed", "alert_retrying"):
        where = " ".join(str(d[k]) for k in ("channel", "target") if d.get(k))
        verb = "could not be delivered to" if kind == "alert_failed" else "is being retried for"
        error = f": {d['error']}" if d.get("error") else ""
        return f"An alert {verb} {where or 'its channel'}{error}"
    if kind == "alerted":
        return "Silence over: the incident was alerted"
    if kind == "silenced":
        return f"{name} silenced alerts for this brand until {d.get('until', '?')}"
    if kind in ("post_flagged", "flagged"):
        return f"{post.capitalize()} was put in the queue"
    if kind in ("post_claimed", "claimed"):
        what = f"a post by {d['author']}" if d.get("author") else post
        return f"{name} claimed {what} to answer"
    if kind in ("post_released", "released"):
        holder = f" (held by {d['holder']})" if d.get("holder") else ""
        return f"{name} put {post} back in the queue{holder}"
    if kind in ("post_answered", "answered"):
        return f"{name} answered {post}"
    if kind in ("post_dismissed", "dismissed"):
        reason = f": {d['reason']}" if d.get("reason") else ""
        return f"{name} dismissed {post}{reason}"
    if kind in ("post_lapsed", "lapsed"):
        holder = f" by {d['holder']}" if d.get("holder") else ""
        return f"The claim{holder} on {post} lapsed; it is back in the queue"
    figures = [f"{k} {v}" for k, v in d.items() if _number(v) is not None]
    suffix = f" ({', '.join(figures[:4])})" if figures else ""
    return f"Update: {escape(kind.replace('_', ' '))}{suffix}"


def event_details(kind: str, data: Mapping[str, Any]) -> str:
    """The numbers behind an event, for whoever opens the details ('' when there are none worth showing)."""
    signals = _signals_of(data)
    if signals:
        return " | ".join(signal_details(s) for s in signals)
    if kind == "severity_changed" and "excess" in data:
        return f"excess {data.get('excess')} negative posts over the expected"
    if kind == "closed" and data.get("last_signal_at"):
        peak = data.get("peak")
        line = f"last signal at {data.get('last_signal_at')}"
        return line + (f"; at its peak: {signal_details(peak)}" if isinstance(peak, Mapping) else "")
    skip = {"post_id", "expires_at", "top_posts", "sources", "signals", "signal", "peak", "severity", "from", "to",
            "level", "after_minutes", "quiet_minutes", "author", "holder", "reason", "until", "into", "channel",
            "target", "error"}
    return ", ".join(f"{k}: {v}" for k, v in data.items() if k not in skip and v not in (None, ""))
