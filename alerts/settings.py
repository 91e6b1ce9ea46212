"""The [alerts] configuration table: where alerts go and how they escalate (see config/README.md, "Alerts").

Each channel owns its own table's model, next to its sender (`alerts.webhook.WebhookSettings`,
`alerts.email.EmailSettings`, `alerts.wecom.WeComSettings`, `alerts.dingtalk.DingTalkSettings`,
`alerts.slack.SlackSettings` for the flat `slack_*` keys); this module only assembles them. Tokens,
secrets and passwords are `SecretStr`: printed or logged they read `**********`.

Without a Slack bot token every alert is printed on the console, so the shipped default works as is.
"""
from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from alerts.dingtalk import DingTalkSettings
from alerts.email import EmailSettings
from alerts.webhook import WebhookSettings
from alerts.wecom import WeComSettings
from monitor.core.settings import OptionalSecret, OptionalText, Strict

# Slack ids as Slack prints them; anything else could smuggle mrkdwn into the mentions we generate.
SLACK_CHANNEL = r"^(#[a-z0-9][a-z0-9._-]{0,79}|[CG][A-Z0-9]{2,})$"
SLACK_USER = r"^[UW][A-Z0-9]{2,}$"
SLACK_MENTION = r"^([UWS][A-Z0-9]{2,}|here|channel)$"


class EscalationLevel(Strict):
    """One step of an escalation policy: who hears about the incident, and how long they have to acknowledge."""

    channels: list[str] = Field(
        default_factory=list, description="Slack channels (C… ids, or #names) that get the incident's thread"
    )
    mention: list[str] = Field(
        default_factory=list,
        description="Slack user groups (S…), users (U…) or 'here'/'channel' mentioned in the incident's threads",
    )
    dm: list[str] = Field(default_factory=list, description="Slack users (U…) who get the incident as a direct message")
    webhooks: list[str] = Field(default_factory=list, description="names of [alerts.webhooks.NAME] tables")
    email: list[str] = Field(default_factory=list, description="e-mail addresses (needs [alerts.email])")
    wecom: list[str] = Field(default_factory=list, description="names of [alerts.wecom.NAME] group robots")
    dingtalk: list[str] = Field(default_factory=list, description="names of [alerts.dingtalk.NAME] group robots")
    ack_timeout_minutes: float = Field(default=15, gt=0, description="climb to the next level after this long unacknowledged")

    @field_validator("channels")
    @classmethod
    def _channels(cls, values: list[str]) -> list[str]:
        return [_match(v, SLACK_CHANNEL, "a Slack channel id like C0123ABCD or a #name") for v in values]

    @field_validator("mention")
    @classmethod
    def _mentions(cls, values: list[str]) -> list[str]:
        return [_match(v, SLACK_MENTION, "a Slack user group id S…, a user id U…, 'here' or 'channel'") for v in values]

    @field_validator("dm")
    @classmethod
    def _dms(cls, values: list[str]) -> list[str]:
        return [_match(v, SLACK_USER, "a Slack user id like U0123ABCD") for v in values]


def _match(value: str, pattern: str, what: str) -> str:
    if not re.match(pattern, value):
        raise ValueError(f"{value!r} is not {what}")
    return value


class EscalationPolicy(Strict):
    """Levels for the incidents of some brands at or above a severity; the first matching policy wins."""

    brands: list[str] = Field(default_factory=list, description="brand names; empty means every brand")
    min_severity: int = Field(default=1, ge=0)
    levels: list[EscalationLevel] = Field(min_length=1)

    @model_validator(mode="after")
    def _first_level_reaches_someone(self) -> EscalationPolicy:
        first = self.levels[0]
        if not (first.channels or first.dm or first.webhooks or first.email or first.wecom or first.dingtalk):
            raise ValueError("the first level needs channels, dm, webhooks, email, wecom or dingtalk (mentions go "
                             "into a thread, which the first level creates)")
        return self

    def matches(self, brand: str, severity: int) -> bool:
        return (not self.brands or brand in self.brands) and severity >= self.min_severity


class FallbackSettings(Strict):
    """Where alerts go that the primary channel could not deliver (failed for good)."""

    channel: Literal["console", "webhook", "email", "wecom", "dingtalk"]
    target: str = Field(default="", description="webhook or robot name, or e-mail address; empty for console")


class AlertSettings(Strict):
    slack_bot_token: OptionalSecret = Field(default=None, description="xoxb-… bot token; unset: console alerts")
    slack_signing_secret: OptionalSecret = Field(default=None, description="verifies POST /slack/actions")
    slack_app_token: OptionalSecret = Field(
        default=None, description="xapp-… token: button clicks over Socket Mode")
    slack_base_url: str = Field(default="https://slack.com/api/", pattern=r"^https?://")
    slack_timeout_seconds: float = Field(default=10, gt=0)
    slack_seconds_per_message: float = Field(
        default=1.0, ge=0, description="per-channel pacing for chat.postMessage (Slack allows about 1/s)"
    )
    default_channel: str = Field(default="#alerts", pattern=SLACK_CHANNEL)
    console: bool = Field(default=False, description="also print every alert (always on without a Slack token)")
    top_posts: int = Field(default=5, ge=0, le=10)
    web_base_url: OptionalText = Field(default=None, description="e.g. https://flarewatch.example; links incidents")
    escalation: list[EscalationPolicy] = Field(default_factory=list)
    webhooks: dict[str, WebhookSettings] = Field(default_factory=dict)
    email: EmailSettings | None = None
    wecom: dict[str, WeComSettings] = Field(default_factory=dict, description="WeCom (企业微信) group robots by name")
    dingtalk: dict[str, DingTalkSettings] = Field(default_factory=dict, description="DingTalk (钉钉) robots by name")
    fallback: FallbackSettings | None = Field(
        default=None, description="receives every alert the primary channel could not deliver")
    max_attempts: int = Field(default=10, ge=1, description="delivery attempts before a message is marked failed")
    send_deadline_seconds: float = Field(
        default=60, gt=0, lt=120,  # below the outbox claim lease (2 min), so no other worker takes a send in flight
        description="one delivery attempt in all (every request it makes, bodies included); then it is retried")
    weekly_digest: bool = Field(
        default=False, description="post the weekly response figures to default_channel on Mondays at 09:00 UTC"
    )

    @model_validator(mode="after")
    def _references(self) -> AlertSettings:
        for i, policy in enumerate(self.escalation):
            for j, level in enumerate(policy.levels):
                for name in level.webhooks:
                    if name not in self.webhooks:
                        raise ValueError(f"escalation[{i}].levels[{j}]: webhook {name!r} has no [alerts.webhooks.{name}]")
                for kind, names, known in (("wecom", level.wecom, self.wecom), ("dingtalk", level.dingtalk, self.dingtalk)):
                    for name in names:
                        if name not in known:
                            raise ValueError(f"escalation[{i}].levels[{j}]: {kind} robot {name!r} has no "
                                             f"[alerts.{kind}.{name}]")
                if level.email and self.email is None:
                    raise ValueError(f"escalation[{i}].levels[{j}]: e-mail targets need an [alerts.email] table")
        if self.fallback is not None:
            table = {"webhook": "webhooks", "wecom": "wecom", "dingtalk": "dingtalk"}.get(self.fallback.channel)
            if table is not None and self.fallback.target not in getattr(self, table):
                raise ValueError(f"fallback: {self.fallback.target!r} has no [alerts.{table}.{self.fallback.target}]")
            if self.fallback.channel == "email" and (self.email is None or "@" not in self.fallback.target):
                raise ValueError("fallback: e-mail needs an [alerts.email] table and an address as target")
        return self

    @property
    def slack_enabled(self) -> bool:
        return self.slack_bot_token is not None

    def policy_for(self, brand: str, severity: int) -> EscalationPolicy:
        """The first policy matching the brand and severity, else one level: the default channel."""
        for policy in self.escalation:
            if policy.matches(brand, severity):
                return policy
        return EscalationPolicy(levels=[EscalationLevel(channels=[self.default_channel])])
