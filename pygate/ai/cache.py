"""Exact-match response cache for non-streamed calls.

The key is the consumer, the requested model and the whole request body (canonical
JSON, keys sorted), so only an identical request by the same consumer is answered
from the cache; per consumer, because a prompt may hold one caller's private data.
Entries live `ttl`, the oldest go first when `max_entries` is reached.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from typing import Any

import orjson


class ResponseCache:
    def __init__(self, ttl_s: float, max_entries: int) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, Any]] = OrderedDict()

    @staticmethod
    def key(consumer: str, endpoint: str, body: dict[str, Any]) -> str:
        canonical = orjson.dumps([consumer, endpoint, body], option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(canonical).hexdigest()

    def get(self, key: str) -> Any | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires <= time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def put(self, key: str, value: Any) -> None:
        self._entries[key] = (time.monotonic() + self.ttl_s, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
