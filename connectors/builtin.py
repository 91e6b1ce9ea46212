"""Imports every shipped connector so that each registers itself."""
from connectors import (  # noqa: F401
    bluesky, hackernews, jetstream, jsonl, mastodon, reddit, rss, webhook, weibo, x,
)
