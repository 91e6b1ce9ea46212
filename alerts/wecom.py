"""WeCom (企业微信) group-robot alerts: `POST {base_url}?key=KEY` with a markdown (or text) message.

The robot's webhook URL is the whole credential (anyone holding the key can post), so `key` comes
from the environment and never appears in logs or errors. Markdown content is at most 4096 bytes
of UTF-8 and text content 2048 (longer alerts are cut). Mentions: `mention_mobiles` /
`mention_all` go in `mentioned_mobile_list`, which only text messages have: set `msgtype = "text"`
for a robot that should ping people.
Rate limit: 20 messages a minute per robot (errcode 45009 when exceeded), paced in `RobotPacer`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

import httpx
from pydantic import Field, SecretStr, field_validator

from alerts.base import AlertJob, Delivered, PermanentError, register_sender
from alerts.robots import RobotPacer, fit_bytes, markdown_body, plain_body, post_robot
from monitor.core.settings import Strict

if TYPE_CHECKING:
    from alerts.settings import AlertSettings

RATE_LIMITED = frozenset({45009})
MARKDOWN_BYTES, TEXT_BYTES = 4096, 2048


class WeComSettings(Strict):
    """[alerts.wecom.NAME]: one WeCom group robot."""

    key: SecretStr = Field(min_length=1, description="the robot's key (the key= of its webhook URL); use ${WECOM_KEY}")
    base_url: str = Field(default="https://qyapi.weixin.qq.com/cgi-bin/webhook/send", pattern=r"^https?://")
    msgtype: Literal["markdown", "text"] = "markdown"
    mention_mobiles: list[str] = Field(default_factory=list, description="phone numbers to @ (text messages)")
    mention_all: bool = Field(default=False, description="@all (text messages)")
    timeout_seconds: float = Field(default=10, gt=0)

    @field_validator("mention_mobiles")
    @classmethod
    def _mobiles(cls, values: list[str]) -> list[str]:
        for value in values:
            if not value.isdigit() or not 5 <= len(value) <= 20:
                raise ValueError(f"{value!r} is not a phone number (digits only)")
        return values


def message(job: AlertJob, settings: WeComSettings) -> dict[str, Any]:
    if settings.msgtype == "markdown":
        _, text = markdown_body(job)
        return {"msgtype": "markdown", "markdown": {"content": fit_bytes(text, MARKDOWN_BYTES)}}
    body: dict[str, Any] = {"content": fit_bytes(plain_body(job), TEXT_BYTES)}
    mentions = [*settings.mention_mobiles, *(["@all"] if settings.mention_all else [])]
    if mentions:
        body["mentioned_mobile_list"] = mentions
    return {"msgtype": "text", "text": body}


@register_sender
class WeComSender:
    channel: ClassVar[str] = "wecom"
    settings_model: ClassVar[type[Strict]] = WeComSettings

    @classmethod
    def configured(cls, settings: AlertSettings) -> WeComSender | None:
        return cls(settings.wecom) if settings.wecom else None

    def __init__(self, robots: dict[str, WeComSettings], client: httpx.Client | None = None,
                 pacer: RobotPacer | None = None) -> None:
        self.robots = robots
        self.client = client or httpx.Client(follow_redirects=False)
        self.pacer = pacer or RobotPacer()

    def send(self, job: AlertJob) -> Delivered:
        robot = self.robots.get(job.target)
        if robot is None:
            raise PermanentError(f"no WeCom robot named {job.target!r} in [alerts.wecom]")
        self.pacer.take(f"wecom:{job.target}")
        url = str(httpx.URL(robot.base_url, params={"key": robot.key.get_secret_value()}))
        post_robot(self.client, f"WeCom robot {job.target}", url, message(job, robot), robot.timeout_seconds,
                   RATE_LIMITED, 60.0, job.now.timestamp())
        return Delivered(f"wecom:{job.target}")
