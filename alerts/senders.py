"""The senders the deliver job uses, built from [alerts] through the channel registry.

Every channel module registers its sender class (`alerts.base.register_sender`), as connectors do
theirs; the class says which `channel` it serves, which settings table is its own
(`settings_model`) and how to build itself from [alerts] (`configured`, None when not configured).
Adding a channel is one module plus its line in `_load_channels`.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from alerts.base import SENDERS, Deadlines, Sender
from alerts.settings import AlertSettings


def _load_channels() -> None:
    from alerts import console, dingtalk, email, slack, webhook, wecom  # noqa: F401  (each registers itself)


@dataclass
class Senders(Mapping[str, Sender]):
    """The senders by channel name, with the settings the worker needs to render messages."""

    by_channel: dict[str, Sender]
    settings: AlertSettings = field(default_factory=AlertSettings)
    deadlines: Deadlines = field(default_factory=Deadlines)

    def __getitem__(self, key: str) -> Sender:
        return self.by_channel[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.by_channel)

    def __len__(self) -> int:
        return len(self.by_channel)


def build_senders(settings: AlertSettings) -> Senders:
    """One sender per configured channel. Build once per process and keep it: senders hold pacing
    state and caches (Slack's conversation ids, robots' per-minute windows)."""
    _load_channels()
    channels: dict[str, Sender] = {}
    for channel, cls in SENDERS.items():
        sender = cls.configured(settings)
        if sender is not None:
            channels[channel] = sender
    return Senders(channels, settings)
