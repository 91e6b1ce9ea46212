"""DingTalk (钉钉) custom group-robot alerts: `POST {base_url}?access_token=…[&timestamp=…&sign=…]`.

Signing ("加签", when the robot has a `secret`): `timestamp` is the current time in milliseconds
and `sign` is base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}")), URL-encoded;
DingTalk rejects a signature more than an hour old (errcode 310000, as for a missing keyword or
an address outside the robot's IP allow-list: those fail at once, with the reason). Messages are
`markdown` (`title` + `text`) or `text`; `at.atMobiles`/`at.isAtAll` carry the configured mentions
(DingTalk also wants the @number in the text, which we add for configured numbers only).
Rate limit: 20 messages a minute per robot; exceeding it mutes the robot for 10 minutes (errcode
130101), so we pace below it in `RobotPacer` and wait 10 minutes after a refusal.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
from pydantic import Field, SecretStr

from alerts.base import AlertJob, register_sender
from alerts.robots import RobotSender, RobotSettings, fit_bytes, markdown_body, plain_body
from monitor.core.settings import OptionalSecret, Strict

if TYPE_CHECKING:
    from alerts.settings import AlertSettings

RATE_LIMITED = frozenset({130101})
MUTED_SECONDS = 600.0
MAX_BYTES = 18_000  # DingTalk documents 20,000 bytes per message


class DingTalkSettings(RobotSettings):
    """[alerts.dingtalk.NAME]: one DingTalk custom robot."""

    access_token: SecretStr = Field(min_length=1, description="the access_token of the robot's webhook URL; use ${…}")
    secret: OptionalSecret = Field(default=None, description="the robot's SEC… signing secret (加签), if it has one")
    base_url: str = Field(default="https://oapi.dingtalk.com/robot/send", pattern=r"^https?://")


def sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's robot signature (before URL-encoding, which httpx does for the query string)."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def signed_url(settings: DingTalkSettings, now: datetime) -> str:
    params: dict[str, str] = {"access_token": settings.access_token.get_secret_value()}
    if settings.secret:
        timestamp = int(now.timestamp() * 1000)
        params |= {"timestamp": str(timestamp), "sign": sign(settings.secret.get_secret_value(), timestamp)}
    return str(httpx.URL(settings.base_url, params=params))


@register_sender
class DingTalkSender(RobotSender[DingTalkSettings]):
    channel: ClassVar[str] = "dingtalk"
    service: ClassVar[str] = "DingTalk"
    settings_model: ClassVar[type[Strict] | None] = DingTalkSettings
    rate_limited: ClassVar[frozenset[int]] = RATE_LIMITED
    rate_limit_wait: ClassVar[float] = MUTED_SECONDS

    @classmethod
    def configured(cls, settings: AlertSettings) -> DingTalkSender | None:
        return cls(settings.dingtalk) if settings.dingtalk else None

    def url(self, robot: DingTalkSettings, job: AlertJob) -> str:
        return signed_url(robot, job.now)  # the daemon's clock: DingTalk wants it within an hour of its own

    def message(self, job: AlertJob, robot: DingTalkSettings) -> dict[str, Any]:
        at = {"atMobiles": robot.mention_mobiles, "isAtAll": robot.mention_all}
        pings = " ".join(f"@{m}" for m in robot.mention_mobiles)  # DingTalk pings numbers named in the text too
        if robot.msgtype == "markdown":
            title, text = markdown_body(job)
            text = fit_bytes(text, MAX_BYTES) + (f"\n\n{pings}" if pings else "")
            return {"msgtype": "markdown", "markdown": {"title": title, "text": text}, "at": at}
        text = fit_bytes(plain_body(job), MAX_BYTES) + (f"\n{pings}" if pings else "")
        return {"msgtype": "text", "text": {"content": text}, "at": at}
