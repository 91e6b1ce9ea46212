"""The senders the daemon's deliver job uses, built from [alerts]."""
from __future__ import annotations

from alerts.base import Sender
from alerts.console import ConsoleSender
from alerts.delivery import Senders
from alerts.settings import AlertSettings


def build_senders(settings: AlertSettings) -> Senders:
    channels: dict[str, Sender] = {"console": ConsoleSender()}
    if settings.slack_enabled:
        from alerts.slack import SlackSender

        channels["slack"] = SlackSender(settings)
    if settings.webhooks:
        from alerts.webhook import WebhookSender

        channels["webhook"] = WebhookSender(settings.webhooks)
    if settings.email is not None:
        from alerts.email import EmailSender

        channels["email"] = EmailSender(settings.email)
    if settings.wecom:
        from alerts.wecom import WeComSender

        channels["wecom"] = WeComSender(settings.wecom)
    if settings.dingtalk:
        from alerts.dingtalk import DingTalkSender

        channels["dingtalk"] = DingTalkSender(settings.dingtalk)
    return Senders(channels, settings)
