"""Alerts printed on the console: the default when no Slack token is configured."""
from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, TextIO

from rich.console import Console
from rich.text import Text

from alerts.base import AlertJob, Delivered, register_sender
from monitor.core.settings import Strict

if TYPE_CHECKING:
    from alerts.settings import AlertSettings
from monitor.core.escape import strip_controls, truncate
from alerts.summary import about_line, event_line, headline, sparkline, state_line, what_moved
from monitor.core.enums import EventKind

STYLE = {1: "yellow", 2: "dark_orange"}


@register_sender
class ConsoleSender:
    channel: ClassVar[str] = "console"
    settings_model: ClassVar[type[Strict] | None] = None

    @classmethod
    def configured(cls, settings: AlertSettings) -> ConsoleSender:
        return cls()  # always there: the channel of last resort

    def __init__(self, file: TextIO | None = None) -> None:
        # markup/highlight off: post text is data and must not be read as rich markup.
        self.console = Console(file=file, markup=False, highlight=False, emoji=False, soft_wrap=True)

    def render(self, job: AlertJob) -> Text:
        view = job.view
        line = Text()
        line.append(f"[flarewatch] {strip_controls(headline(view))}", style=f"bold {STYLE.get(view.severity, 'red')}")
        if job.event is not None and job.event.kind != EventKind.OPENED:
            line.append(f" | {strip_controls(event_line(job.event))}")
        line.append(f"\n  {strip_controls(what_moved(view))}; {strip_controls(state_line(view, job.now))}")
        about = about_line(view)
        if about:
            line.append(f"\n  {strip_controls(about)}")
        if view.trend:
            line.append(f"\n  trend {sparkline(view.trend)}")
        for post in view.top_posts[:3]:
            text = truncate(" ".join(strip_controls(post.text).split()), 140)
            line.append(f"\n  - {strip_controls(post.author)} (reach {post.reach:,}) {strip_controls(post.url or '')}: {text}")
        return line

    def send(self, job: AlertJob) -> Delivered:
        self.console.print(self.render(job))
        return Delivered()
