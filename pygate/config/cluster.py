"""The `cluster:` section: state shared by every node of a deployment, on Redis.

Rate limits with `scope: cluster` and the AI gateway's token-per-minute limits and cost
budgets (when `cluster.redis` is set) share one budget across the nodes on the same Redis
(README: "Cluster-wide limits"). The URL forms are the core's (core-rs/src/cluster/connect.rs):

- `redis://HOST:PORT/DB`, `rediss://HOST:PORT/DB` (TLS, verified against the system roots);
- `redis+cluster://HOST:PORT,HOST:PORT` (also `rediss+cluster://`): a Redis Cluster;
- `redis+sentinel://HOST:PORT,HOST:PORT/MASTER/DB` (also `rediss+sentinel://`).

Credentials are never part of the URL (which logs and `pygate status` may show): they are
`username` and `password`, a secret (fingerprinted by the admin API, scrubbed from logs).
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from collections.abc import Iterator
from typing import Annotated, Any, Literal

import msgspec

from pygate.config.paths import FieldPath
from pygate.config.units import Duration, SecretText

Finding = tuple[FieldPath, str]
NonNegative = Annotated[int, msgspec.Meta(ge=0)]

SCHEMES = (
    "redis",
    "rediss",
    "redis+cluster",
    "rediss+cluster",
    "redis+sentinel",
    "rediss+sentinel",
)
_HOST = r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?"
_FORMS = {
    "": re.compile(rf"^{_HOST}(/[0-9]+)?/?$"),
    "cluster": re.compile(rf"^{_HOST}(,{_HOST})*/?$"),
    "sentinel": re.compile(rf"^{_HOST}(,{_HOST})*/[A-Za-z0-9._-]+(/[0-9]+)?/?$"),
}
EXPECTED = (
    "expected redis://HOST:PORT/DB, rediss://HOST:PORT/DB, redis+cluster://HOST:PORT,HOST:PORT "
    "or redis+sentinel://HOST:PORT,HOST:PORT/MASTER/DB (rediss+... for TLS)"
)


class Cluster(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # The Redis every node shares; null: no cluster-wide state (every limit is the node's).
    redis: str | None = None
    username: str | None = None
    # Usually ${REDIS_PASSWORD}: never in the URL.
    password: SecretText | None = None
    # The longest any Redis call may take; the request path itself never waits on Redis.
    timeout: Duration = Duration(50)
    # Redis unreachable: fail_open = each node limits alone to the cluster limit divided by
    # the nodes in the last heartbeat; fail_closed = cluster-limited routes answer 503.
    on_redis_down: Literal["fail_open", "fail_closed"] = "fail_open"
    # Tokens a node takes from Redis at once per key (0: 1% of the limit's burst or 20 ms
    # of its rate, whichever is more, 1..1000): a window can admit nodes x lease too many.
    lease: NonNegative = 0
    # How often a node says it is alive (the node count for fail_open); gone after 3 missed.
    heartbeat: Duration = Duration(1_000)
    # Every key the gateway writes starts with it (several gateways on one Redis).
    key_prefix: str = "pygate:"


def redis_url_problem(url: str) -> str | None:
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in SCHEMES:
        return f"unknown URL {url!r}: {EXPECTED}"
    if "@" in rest:
        return (
            "credentials in the URL would show in logs and status: put them in "
            "cluster.username / cluster.password (e.g. password: ${REDIS_PASSWORD})"
        )
    kind = scheme.partition("+")[2]
    if not _FORMS[kind].match(rest):
        return f"malformed {scheme}:// URL: {EXPECTED}"
    return None


def cluster_problems(cluster: Cluster | None) -> Iterator[Finding]:
    if cluster is None or cluster.redis is None:
        return
    problem = redis_url_problem(cluster.redis)
    if problem:
        yield ("cluster", "redis"), problem
    if int(cluster.timeout) <= 0:
        yield ("cluster", "timeout"), "expected a timeout > 0, e.g. 50ms"
    if int(cluster.heartbeat) <= 0:
        yield ("cluster", "heartbeat"), "expected an interval > 0, e.g. 1s"


def cluster_limits_without_redis(routes: list[Any]) -> Iterator[Finding]:
    for ri, route in enumerate(routes):
        limit = route.plugins.get("rate-limit")
        if getattr(limit, "scope", "local") == "cluster":
            yield (
                ("routes", ri, "plugins", "rate-limit", "scope"),
                "scope: cluster needs cluster.redis (a Redis the nodes share)",
            )


_NODE_ID = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def compile_cluster(cluster: Cluster | None) -> dict[str, Any] | None:
    if cluster is None or cluster.redis is None:
        return None
    return {
        "redis": cluster.redis,
        "username": cluster.username,
        "password": cluster.password or None,
        "timeout_ms": max(1, int(cluster.timeout)),
        "on_redis_down": cluster.on_redis_down,
        "lease": cluster.lease,
        "heartbeat_ms": max(1, int(cluster.heartbeat)),
        "node_id": _NODE_ID,
        "key_prefix": cluster.key_prefix,
    }
