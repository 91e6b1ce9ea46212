"""What WeCom (企业微信) and DingTalk (钉钉) group robots share: markdown wording, escaping, pacing, answers,
and the sender shell (`RobotSettings`, `RobotSender`: the robot a job names, paced, one POST).

Both robots take a JSON POST with `msgtype` `markdown` or `text`, answer HTTP 200 with
`{"errcode": 0, "errmsg": "ok"}` on success and a non-zero `errcode` otherwise, and allow about
20 messages a minute per robot (exceeding it gets the robot throttled: WeCom errcode 45009,
DingTalk 130101, which also mutes it for a while). We pace below that per robot (a moving window
of the `limits` library) so a burst of incident updates waits in the outbox instead of being refused.

Escaping: post text comes from strangers. Their markdown dialects have no documented escape
character, so the characters that could build a link (`[`, `]`), a tag such as WeCom's `<@userid>`
mention or `<font>` (`<`, `>`), or formatting are replaced with look-alikes or a backslash, and a
word joiner after `@` keeps `@all`/`@所有人` inert. Who gets pinged is only ever the configured
`mention_mobiles`/`mention_all`, sent in the API's own fields, never text.
"""
from __future__ import annotations

import json
import math
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar, Generic, Literal, TypeVar

import httpx
from limits import parse, storage, strategies
from pydantic import Field, field_validator

from alerts.base import AlertJob, Deferred, Delivered, PermanentError, RetryableError
from monitor.core.settings import Strict
from monitor.core.http_outcome import Outcome, classify, retry_after
from monitor.core.escape import strip_controls, truncate
from alerts.summary import event_line, headline, sparkline, state_line, what_moved
from monitor.core.enums import EventKind

PER_ROBOT = parse("20 per minute")  # both services document 20 messages/minute per robot
_LOOKALIKE = str.maketrans({"<": "＜", ">": "＞", "[": "［", "]": "］"})
_MARKDOWN = re.compile(r"([\\`*_~#|])")
_AT = re.compile(r"@(?=\S)")


def escape_robot_markdown(text: str, limit: int | None = None) -> str:
    """Untrusted text made inert for WeCom/DingTalk markdown (and their text messages), on one line."""
    text = " ".join(strip_controls(text).split())
    if limit is not None:
        text = truncate(text, limit)
    text = _MARKDOWN.sub(r"\\\1", text.translate(_LOOKALIKE))
    return _AT.sub("@\u2060", text)


def fit_bytes(text: str, max_bytes: int) -> str:
    """At most `max_bytes` of UTF-8 (the services count bytes), cut on a grapheme boundary."""
    if len(text.encode("utf-8")) <= max_bytes:
        return text
    low, high = 0, len(text)
    while low < high:  # the longest grapheme-safe prefix that fits
        middle = (low + high + 1) // 2
        if len(truncate(text, middle).encode("utf-8")) <= max_bytes:
            low = middle
        else:
            high = middle - 1
    return truncate(text, low)


def markdown_body(job: AlertJob, max_posts: int = 3) -> tuple[str, str]:
    """(title, markdown) for one alert; every value taken from posts or events is escaped."""
    view = job.view
    title = headline(view)
    if job.event is not None and job.event.kind != EventKind.OPENED:
        title = f"{event_line(job.event)} - {title}"
    lines = [f"### {escape_robot_markdown(headline(view), 200)}"]
    if job.event is not None and job.event.kind != EventKind.OPENED:
        lines.append(f"**{event_line(job.event, escape=lambda s: escape_robot_markdown(s, 200))}**")
    lines.append(escape_robot_markdown(what_moved(view)))
    lines.append(escape_robot_markdown(state_line(view, job.now)))
    if view.trend:
        lines.append(f"trend {sparkline(view.trend)}")
    for post in view.top_posts[:max_posts]:
        lines.append(f"> {escape_robot_markdown(post.author, 60)} (reach {post.reach:,}): "
                     f"{escape_robot_markdown(post.text, 200)}")
    if view.web_url:  # our own configured base URL, not post data
        lines.append(f"[Open the incident]({view.web_url})")
    return strip_controls(title)[:120], "\n\n".join(lines)


def plain_body(job: AlertJob, max_posts: int = 3) -> str:
    view = job.view
    lines = [escape_robot_markdown(headline(view), 200)]
    if job.event is not None and job.event.kind != EventKind.OPENED:
        lines.append(event_line(job.event, escape=lambda s: escape_robot_markdown(s, 200)))
    lines += [escape_robot_markdown(what_moved(view)), escape_robot_markdown(state_line(view, job.now))]
    for post in view.top_posts[:max_posts]:
        lines.append(f"- {escape_robot_markdown(post.author, 60)}: {escape_robot_markdown(post.text, 200)}")
    if view.web_url:
        lines.append(view.web_url)
    return "\n".join(lines)


class RobotPacer:
    """At most 20 messages a minute per robot; over that, `Deferred` until the window frees a slot."""

    def __init__(self, limit: str | None = None, now: Callable[[], float] = time.time) -> None:
        self.item = parse(limit) if limit else PER_ROBOT
        self._limiter = strategies.MovingWindowRateLimiter(storage.MemoryStorage())
        self._now = now

    def take(self, robot: str) -> None:
        if not self._limiter.hit(self.item, robot):
            reset = self._limiter.get_window_stats(self.item, robot).reset_time
            raise Deferred(f"robot {robot} is at {self.item}", max(1.0, math.ceil(reset - self._now())))


MAX_ANSWER_BYTES = 64 * 1024


def post_robot(client: httpx.Client, name: str, url: str, body: dict[str, Any], timeout: float,
               rate_limited_codes: frozenset[int], rate_limit_wait: float, now: float | None = None) -> dict[str, Any]:
    """POST one robot message and classify the answer (the URL carries the robot's key: never logged)."""
    try:
        with client.stream("POST", url, json=body, timeout=timeout) as response:
            raw = bytearray()
            for chunk in response.iter_bytes():  # streamed and bounded: a reply is a few dozen bytes of JSON
                raw += chunk
                if len(raw) > MAX_ANSWER_BYTES:
                    raise RetryableError(f"{name} answered more than {MAX_ANSWER_BYTES:,} bytes")
    except httpx.HTTPError as exc:
        raise RetryableError(f"{name} unreachable: {type(exc).__name__}") from None
    outcome = classify(response.status_code)
    if outcome is Outcome.RATE_LIMITED:
        wait = retry_after(response.headers, time.time() if now is None else now)
        raise RetryableError(f"{name} rate limited (HTTP 429)", rate_limit_wait if wait is None else max(wait, 1.0))
    if outcome is Outcome.TRANSIENT:
        raise RetryableError(f"{name} answered HTTP {response.status_code}")
    if outcome is not Outcome.OK:
        raise PermanentError(f"{name} refused the alert: HTTP {response.status_code}")
    try:
        answer = json.loads(raw)
        if not isinstance(answer, dict):
            raise TypeError("not an object")
        code = int(answer.get("errcode", -1))
    except (ValueError, TypeError):
        raise RetryableError(f"{name} answered something that is not its JSON reply") from None
    if code == 0:
        return answer
    message = strip_controls(str(answer.get("errmsg", "")))[:200]
    if code in rate_limited_codes:
        raise RetryableError(f"{name} rate limited: errcode {code} {message}", rate_limit_wait)
    if code == -1:  # "system busy" on both services
        raise RetryableError(f"{name} busy: {message}")
    raise PermanentError(f"{name} refused the alert: errcode {code} {message}")


class RobotSettings(Strict):
    """The keys every `[alerts.wecom.NAME]` / `[alerts.dingtalk.NAME]` table has besides its credential."""

    msgtype: Literal["markdown", "text"] = "markdown"
    mention_mobiles: list[str] = Field(default_factory=list, description="phone numbers to @")
    mention_all: bool = Field(default=False, description="@all")
    timeout_seconds: float = Field(default=10, gt=0)

    @field_validator("mention_mobiles")
    @classmethod
    def _mobiles(cls, values: list[str]) -> list[str]:
        for value in values:
            if not value.isdigit() or not 5 <= len(value) <= 20:
                raise ValueError(f"{value!r} is not a phone number (digits only)")
        return values


R = TypeVar("R", bound=RobotSettings)


class RobotSender(ABC, Generic[R]):
    """One sender for a channel's named robots: finds the robot a job names, paces it, posts once.

    A robot channel says who it is (`channel`, `service`), which errcodes mean "too many" and how long
    to wait then, and builds its `url` (the credential is in it) and its `message`.
    """

    channel: ClassVar[str]
    service: ClassVar[str]  # how messages name the robot: "WeCom robot support"
    rate_limited: ClassVar[frozenset[int]]
    rate_limit_wait: ClassVar[float]

    def __init__(self, robots: dict[str, R], client: httpx.Client | None = None,
                 pacer: RobotPacer | None = None) -> None:
        self.robots = robots
        self.client = client or httpx.Client(follow_redirects=False)
        self.pacer = pacer or RobotPacer()

    @abstractmethod
    def url(self, robot: R, job: AlertJob) -> str:
        """The robot's webhook URL with its credential (never logged)."""

    @abstractmethod
    def message(self, job: AlertJob, robot: R) -> dict[str, Any]:
        """The JSON body for this alert."""

    def send(self, job: AlertJob) -> Delivered:
        robot = self.robots.get(job.target)
        if robot is None:
            raise PermanentError(f"no {self.service} robot named {job.target!r} in [alerts.{self.channel}]")
        self.pacer.take(f"{self.channel}:{job.target}")
        post_robot(self.client, f"{self.service} robot {job.target}", self.url(robot, job), self.message(job, robot),
                   robot.timeout_seconds, self.rate_limited, self.rate_limit_wait, job.now.timestamp())
        return Delivered(f"{self.channel}:{job.target}")
