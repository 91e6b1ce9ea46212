"""Failed-login throttling, so passwords cannot be guessed online.

Wrong passwords count per account and per client address in moving windows (the `limits`
library, in memory: a restart forgets them). Once either count is spent, every login for that
account or from that address is refused with 429 until the window moves on, the right password
included, so a guesser cannot tell a hit from a refusal. A successful login clears its account's
count.
"""
from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse, storage, strategies


class LoginThrottle:
    def __init__(self, per_account: str, per_address: str) -> None:
        self._account, self._address = parse(per_account), parse(per_address)  # validated by the config
        self._limiter = strategies.MovingWindowRateLimiter(storage.MemoryStorage())

    def _keys(self, username: str, address: str) -> tuple[tuple[RateLimitItem, str, str], ...]:
        return ((self._account, "account", username.casefold()), (self._address, "address", address))

    def retry_after(self, username: str, address: str) -> int | None:
        """Seconds until a login for this account from this address may be tried; None: now."""
        waits = [math.ceil(self._limiter.get_window_stats(limit, *key).reset_time - time.time())
                 for limit, *key in self._keys(username, address) if not self._limiter.test(limit, *key)]
        return max(1, max(waits)) if waits else None

    def failed(self, username: str, address: str) -> None:
        for limit, *key in self._keys(username, address):
            self._limiter.hit(limit, *key)

    def succeeded(self, username: str) -> None:
        self._limiter.clear(self._account, "account", username.casefold())
