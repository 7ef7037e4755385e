"""proxy-cache: answer repeated GET and HEAD requests of a route from memory.

    proxy-cache:
      ttl: 30s
      statuses: [200]             # which upstream statuses are stored
      vary_headers: [Accept-Language]
      max_entries: 1000
      max_bytes: 10m              # bodies and headers of all entries, least recently used go first
      max_entry_bytes: 1m

The key is the method, the URI as the client sent it and the values of `vary_headers`.
Every answer says what happened in X-Cache-Status: HIT (from memory, with Age), MISS
(fetched and, if storable, stored) or BYPASS (not looked up: another method, or the
client asked for a fresh copy with Cache-Control: no-cache / Pragma: no-cache; the fresh
copy is stored unless the client said no-store).

Not stored: streamed responses, responses with Cache-Control no-store, no-cache or private
or with Set-Cookie (they belong to one client), and, as RFC 9111 asks of shared caches,
answers to requests with Authorization unless the response is marked public. A response
max-age / s-maxage shorter than `ttl` shortens the entry's life.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec

from pygate.config.units import Duration, Size
from pygate.plugins.python import Plugin, Request, Response
from pygate.plugins.registry import register_python

CACHEABLE_METHODS = ("GET", "HEAD")
STATUS_HEADER = "X-Cache-Status"
# Not replayed from the cache: per-connection or per-call headers, and framing the core
# computes itself for a direct answer.
_NOT_STORED = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "x-request-id",
    "date",
    "age",  # recomputed for each hit
    STATUS_HEADER.lower(),
}


class ProxyCacheConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    ttl: Duration = Duration(60_000)
    statuses: list[Annotated[int, msgspec.Meta(ge=100, le=599)]] = msgspec.field(
        default_factory=lambda: [200]
    )
    vary_headers: list[str] = []
    max_entries: Annotated[int, msgspec.Meta(ge=1)] = 1000
    max_bytes: Size = Size(10 * 1024 * 1024)
    max_entry_bytes: Size = Size(1024 * 1024)


def check(config: ProxyCacheConfig, _context: Any) -> Iterator[tuple[tuple, str]]:
    if config.ttl <= 0:
        yield ("ttl",), "expected a duration greater than 0"
    if config.max_entry_bytes > config.max_bytes:
        yield ("max_entry_bytes",), f"must not exceed max_bytes ({int(config.max_bytes)})"


@dataclass(slots=True)
class Entry:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    stored_at: float
    expires_at: float

    @property
    def size(self) -> int:
        # A rough per-entry overhead so that many tiny entries still count.
        return len(self.body) + sum(len(k) + len(v) for k, v in self.headers) + 128


class LruStore:
    """Entries by key, bounded by count and bytes; the least recently used go first."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.entries: OrderedDict[str, Entry] = OrderedDict()
        self.bytes = 0

    def get(self, key: str, now: float) -> Entry | None:
        entry = self.entries.get(key)
        if entry is None:
            return None
        if entry.expires_at <= now:
            self._drop(key)
            return None
        self.entries.move_to_end(key)
        return entry

    def put(self, key: str, entry: Entry) -> None:
        if key in self.entries:
            self._drop(key)
        self.entries[key] = entry
        self.bytes += entry.size
        while len(self.entries) > self.max_entries or self.bytes > self.max_bytes:
            self._drop(next(iter(self.entries)))

    def _drop(self, key: str) -> None:
        self.bytes -= self.entries.pop(key).size


def _directives(value: str | None) -> dict[str, str | None]:
    """Cache-Control directives, lower-cased: {"max-age": "60", "no-store": None}."""
    out: dict[str, str | None] = {}
    for part in (value or "").split(","):
        name, eq, arg = part.strip().partition("=")
        if name:
            out[name.lower()] = arg.strip('"') if eq else None
    return out


_SECONDS = re.compile(r"^\d+$")


def storable_ttl(
    config: ProxyCacheConfig, request_headers: Any, status: int, headers: Any
) -> float | None:
    """Seconds to keep this response, or None when it must not be stored."""
    if status not in config.statuses:
        return None
    cc = _directives(headers.get("cache-control"))
    if {"no-store", "no-cache", "private"} & cc.keys() or headers.get("set-cookie") is not None:
        return None
    if request_headers.get("authorization") is not None and "public" not in cc:
        return None
    ttl = config.ttl / 1000
    for directive in ("s-maxage", "max-age"):
        value = cc.get(directive)
        if value is not None and _SECONDS.match(value):
            ttl = min(ttl, float(value))
            break
    return ttl if ttl > 0 else None


def wants_fresh(request_headers: Any) -> bool:
    cc = _directives(request_headers.get("cache-control"))
    pragma = (request_headers.get("pragma") or "").lower()
    return "no-cache" in cc or "no-store" in cc or "no-cache" in pragma


class ProxyCache(Plugin):
    Config = ProxyCacheConfig

    def __init__(self, config: ProxyCacheConfig) -> None:
        super().__init__(config)
        self.store = LruStore(config.max_entries, config.max_bytes)

    def key(self, request: Request) -> str:
        uri = f"{request.path}?{request.query}" if request.query else request.path
        varies = [request.headers.get(name) or "" for name in self.config.vary_headers]
        return "\n".join([request.method, uri, *varies])

    async def access(self, request: Request) -> Response | None:
        if request.method not in CACHEABLE_METHODS or wants_fresh(request.headers):
            return None
        now = time.monotonic()
        entry = self.store.get(self.key(request), now)
        if entry is None:
            return None
        age = str(int(now - entry.stored_at))
        headers = [*entry.headers, ("Age", age), (STATUS_HEADER, "HIT")]
        return Response(entry.status, headers=headers, body=entry.body)

    async def response(self, request: Request, response: Response) -> None:
        # A hit never gets here (direct answers skip the response phase): this is a
        # request the access phase let through, so it can be told apart again.
        cacheable = request.method in CACHEABLE_METHODS
        fresh = cacheable and wants_fresh(request.headers)
        response.headers[STATUS_HEADER] = "MISS" if cacheable and not fresh else "BYPASS"
        if (
            not cacheable
            or response.body is None
            or len(response.body) > self.config.max_entry_bytes
        ):
            return
        if "no-store" in _directives(request.headers.get("cache-control")):
            return
        ttl = storable_ttl(self.config, request.headers, response.status, response.headers)
        if ttl is None:
            return
        now = time.monotonic()
        headers = [(k, v) for k, v in response.headers.items() if k.lower() not in _NOT_STORED]
        entry = Entry(response.status, headers, bytes(response.body), now, now + ttl)
        self.store.put(self.key(request), entry)


PLUGIN = register_python("proxy-cache", ProxyCache, check=check)
