"""The AI gateway's token-per-minute and cost usage on the cluster's Redis (`cluster.redis`),
so every node counts the same usage: limits and budgets are cluster-wide.

Each read and each charge is one Lua script on one limit's keys (atomic, Redis's clock):
a sorted set of charges for the 60-second window and a float per UTC day and month. The
keys of one limit share a hash tag, so a Redis Cluster keeps them in one slot. Any Redis
error or a call slower than `cluster.timeout` raises SharedUsageDown; limits.py then applies
`cluster.on_redis_down` (the node's own counters, or 503).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import Sentinel

from pygate.config.cluster import Cluster

log = logging.getLogger("pygate")

WINDOW_MS = 60_000

# KEYS: window set, day key, month key. Returns {tokens in window, ms since the oldest
# charge in it (-1: none), day spent, month spent} (floats as strings).
USAGE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]))
local tokens = 0
local oldest = -1
local entries = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #entries, 2 do
  tokens = tokens + tonumber(string.match(entries[i], '^(%d+):'))
  if oldest < 0 then oldest = now - tonumber(entries[i + 1]) end
end
return {tokens, oldest, redis.call('GET', KEYS[2]) or '0', redis.call('GET', KEYS[3]) or '0'}
"""

# KEYS as USAGE; ARGV: window ms, tokens, cost, a unique charge id, day TTL s, month TTL s.
CHARGE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if tonumber(ARGV[2]) > 0 then
  redis.call('ZADD', KEYS[1], now, ARGV[2] .. ':' .. ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]))
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) * 2)
end
if tonumber(ARGV[3]) > 0 then
  redis.call('INCRBYFLOAT', KEYS[2], ARGV[3])
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[5]))
  redis.call('INCRBYFLOAT', KEYS[3], ARGV[3])
  redis.call('EXPIRE', KEYS[3], tonumber(ARGV[6]))
end
return 1
"""


class SharedUsageDown(Exception):
    pass


def _hosts(rest: str, default_port: int) -> list[tuple[str, int]]:
    """ "h1:p1,h2" (before any "/") as [(h1, p1), (h2, default_port)]."""
    out = []
    for item in rest.split("/", 1)[0].split(","):
        host, sep, port = item.rpartition(":")
        out.append((host.strip("[]"), int(port)) if sep else (item, default_port))
    return out


def _client(cluster: Cluster) -> Any:
    url = cluster.redis or ""
    scheme, _, rest = url.partition("://")
    tls = scheme.startswith("rediss")
    timeout = int(cluster.timeout) / 1000
    auth: dict[str, Any] = {
        "username": cluster.username,
        "password": cluster.password or None,
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout * 4,
    }
    if scheme.endswith("+cluster"):
        nodes = [ClusterNode(h, p) for h, p in _hosts(rest, 6379)]
        return RedisCluster(startup_nodes=nodes, ssl=tls, **auth)
    if scheme.endswith("+sentinel"):
        parts = rest.split("/")
        master, db = parts[1], int(parts[2]) if len(parts) > 2 and parts[2] else 0
        sentinel = Sentinel(_hosts(rest, 26379), ssl=tls, socket_timeout=timeout)
        return sentinel.master_for(master, db=db, ssl=tls, **auth)
    return aioredis.from_url(f"{scheme}://{rest}", **auth)


class SharedUsage:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.policy = cluster.on_redis_down
        self.timeout_s = int(cluster.timeout) / 1000
        self.client = _client(cluster)
        self.usage_script = self.client.register_script(USAGE)
        self.charge_script = self.client.register_script(CHARGE)
        self.down = False
        self.pending: set[asyncio.Task] = set()

    def _keys(self, key: tuple[str, str], now: datetime) -> list[str]:
        tag = f"{self.cluster.key_prefix}ai:{{{key[0]}:{key[1]}}}"
        return [f"{tag}:tpm", f"{tag}:day:{now:%Y-%m-%d}", f"{tag}:month:{now:%Y-%m}"]

    def _state(self, up: bool, error: Exception | None = None) -> None:
        if up and self.down:
            log.warning("cluster: Redis answers again; AI limits are cluster-wide again")
        elif not up and not self.down:
            log.warning(
                "cluster: Redis is unreachable for AI limits (%s); on_redis_down: %s",
                type(error).__name__,
                self.policy,
            )
        self.down = not up

    async def _run(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            result = await asyncio.wait_for(script(keys=keys, args=args), self.timeout_s)
        except (aioredis.RedisError, OSError, TimeoutError) as error:
            self._state(False, error)
            raise SharedUsageDown(str(error)) from None
        self._state(True)
        return result

    async def usage(self, key: tuple[str, str]) -> tuple[int, float, float, float]:
        """(tokens in the last minute, seconds since its oldest charge, day, month spent)."""
        now = datetime.now(UTC)
        tokens, oldest, day, month = await self._run(
            self.usage_script, self._keys(key, now), [WINDOW_MS]
        )
        return int(tokens), max(int(oldest), 0) / 1000, float(day), float(month)

    def charge(self, key: tuple[str, str], tokens: int, cost: float) -> None:
        """Fire and forget (the call is already answered); a lost charge is logged."""
        now = datetime.now(UTC)
        args = [WINDOW_MS, tokens, repr(cost), uuid.uuid4().hex, 2 * 86_400, 32 * 86_400]

        async def run() -> None:
            try:
                await self._run(self.charge_script, self._keys(key, now), args)
            except SharedUsageDown:
                pass  # counted locally (limits.py), logged by _state

        task = asyncio.get_running_loop().create_task(run())
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def close(self) -> None:
        await self.client.aclose()
