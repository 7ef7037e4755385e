"""Provider key pools: round-robin over the keys that are not resting.

A key rests for the provider's `key_cooldown` (or as long as the provider's Retry-After
asks) after a 429 or a quota error, and for `key_cooldown` after the provider refused
it (401/403: revoked, wrong project, region): the pool's other keys are used meanwhile,
and a refused key is tried again only once its rest is over. `unavailable` tells the
engine why no key was left: every key refused (the operator's problem: 502) or some
resting after a rate limit (429, with when one is back). Keys are never logged: log
lines and errors name a key by its position in the pool ("key #2").
"""

from __future__ import annotations

import math
import time


class KeyPool:
    def __init__(self, keys: list[str], cooldown_s: float) -> None:
        # A provider without keys (a local OpenAI-compatible server) has one empty key.
        self.keys = list(keys) or [""]
        self.cooldown_s = cooldown_s
        self._resting_until = [0.0] * len(self.keys)
        self._refused = [False] * len(self.keys)  # why the key rests: refused, or 429
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
        """The key was rate limited."""
        pause = self.cooldown_s if retry_after_s is None else max(retry_after_s, 0.0)
        self._resting_until[index] = time.monotonic() + pause
        self._refused[index] = False

    def refuse(self, index: int) -> None:
        """The provider refused the key (401/403)."""
        self._resting_until[index] = time.monotonic() + self.cooldown_s
        self._refused[index] = True

    def unavailable(self) -> tuple[bool, int]:
        """Why `take` found nothing: (every key was refused, whole seconds until a
        rate-limited key is back, at least 1)."""
        now = time.monotonic()
        resting = zip(self._resting_until, self._refused, strict=True)
        waits = [until - now for until, refused in resting if not refused]
        if not waits:
            return True, math.ceil(max(min(self._resting_until) - now, 1.0))
        return False, max(math.ceil(min(waits)), 1)

    def key(self, index: int) -> str:
        return self.keys[index]
