"""Every shipped connector, listed once: `connectors.registry` serves them by `kind`."""
from __future__ import annotations

from connectors.bluesky import BlueskySearch
from connectors.hackernews import HackerNews
from connectors.jetstream import Jetstream
from connectors.jsonl import JsonlReplay
from connectors.mastodon import Mastodon
from connectors.reddit import Reddit
from connectors.rss import RssFeeds
from connectors.webhook import WebhookSource
from connectors.weibo import Weibo
from connectors.x import XSearch

# Plain classes: each satisfies `Connector` structurally; the registry holds them as that.
BUILTIN: tuple[type, ...] = (
    BlueskySearch, HackerNews, Jetstream, JsonlReplay, Mastodon, Reddit, RssFeeds, WebhookSource, Weibo, XSearch,
)
