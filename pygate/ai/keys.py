"""Provider key pools: round-robin over the keys that are not resting.

A key that got 429 (or a quota or auth error) rests for the provider's
`key_cooldown`, or as long as the provider's Retry-After asks. Keys are never logged:
log lines and errors name a key by its position in the pool ("key #2").
"""

from __future__ import annotations

import time


class KeyPool:
    def __init__(self, keys: list[str], cooldown_s: float) -> None:
        # A provider without keys (a local OpenAI-compatible server) has one empty key.
        self.keys = list(keys) or [""]
        self.cooldown_s = cooldown_s
        self._resting_until = [0.0] * len(self.keys)
        self._next = 0

    def take(self) -> int | None:
        """The index of the next usable key, or None when every key is resting."""
        now = time.monotonic()
        for offset in range(len(self.keys)):
            index = (self._next + offset) % len(self.keys)
            if self._resting_until[index] <= now:
                self._next = index + 1
                return index
        return None

    def rest(self, index: int, retry_after_s: float | None = None) -> None:
        pause = self.cooldown_s if retry_after_s is None else max(retry_after_s, 0.0)
        self._resting_until[index] = time.monotonic() + pause

    def key(self, index: int) -> str:
        return self.keys[index]

    def secrets(self) -> list[str]:
        return [k for k in self.keys if k]
