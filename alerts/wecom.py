"""WeCom (企业微信) group-robot alerts: `POST {base_url}?key=KEY` with a markdown (or text) message.

The robot's webhook URL is the whole credential (anyone holding the key can post), so `key` comes
from the environment and never appears in logs or errors. Markdown content is at most 4096 bytes
of UTF-8 and text content 2048 (longer alerts are cut). Mentions: `mention_mobiles` /
`mention_all` go in `mentioned_mobile_list`, which only text messages have: set `msgtype = "text"`
for a robot that should ping people.
Rate limit: 20 messages a minute per robot (errcode 45009 when exceeded), paced in `RobotPacer`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import httpx
from pydantic import Field, SecretStr

from alerts.base import AlertJob, register_sender
from alerts.robots import RobotSender, RobotSettings, fit_bytes, markdown_body, plain_body
from monitor.core.settings import Strict

if TYPE_CHECKING:
    from alerts.settings import AlertSettings

RATE_LIMITED = frozenset({45009})
MARKDOWN_BYTES, TEXT_BYTES = 4096, 2048


class WeComSettings(RobotSettings):
    """[alerts.wecom.NAME]: one WeCom group robot (mentions reach people in text messages only)."""

    key: SecretStr = Field(min_length=1, description="the robot's key (the key= of its webhook URL); use ${WECOM_KEY}")
    base_url: str = Field(default="https://qyapi.weixin.qq.com/cgi-bin/webhook/send", pattern=r"^https?://")


@register_sender
class WeComSender(RobotSender[WeComSettings]):
    channel: ClassVar[str] = "wecom"
    service: ClassVar[str] = "WeCom"
    settings_model: ClassVar[type[Strict] | None] = WeComSettings
    rate_limited: ClassVar[frozenset[int]] = RATE_LIMITED
    rate_limit_wait: ClassVar[float] = 60.0

    @classmethod
    def configured(cls, settings: AlertSettings) -> WeComSender | None:
        return cls(settings.wecom) if settings.wecom else None

    def url(self, robot: WeComSettings, job: AlertJob) -> str:
        return str(httpx.URL(robot.base_url, params={"key": robot.key.get_secret_value()}))

    def message(self, job: AlertJob, robot: WeComSettings) -> dict[str, Any]:
        if robot.msgtype == "markdown":
            _, text = markdown_body(job)
            return {"msgtype": "markdown", "markdown": {"content": fit_bytes(text, MARKDOWN_BYTES)}}
        body: dict[str, Any] = {"content": fit_bytes(plain_body(job), TEXT_BYTES)}
        mentions = [*robot.mention_mobiles, *(["@all"] if robot.mention_all else [])]
        if mentions:
            body["mentioned_mobile_list"] = mentions
        return {"msgtype": "text", "text": body}
