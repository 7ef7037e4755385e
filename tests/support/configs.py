"""User-facing YAML configs (as dicts) used by the tests.

Each route that a test must tell apart points at its own upstream *site* (a named port
of the test upstream process), because the echo reply names the site that served it.
"""

from __future__ import annotations

from typing import Any

from .upstreams import Upstreams

# Every site of the session-wide test upstream process.
SITES = [
    "echo",
    "exact",
    "param",
    "prefix",
    "host-exact",
    "host-wild",
    "rr1",
    "rr2",
    "w1",
    "w3",
    "lc1",
    "lc2",
    "live",
]

CONSUMERS = [
    {"name": "alice", "keys": ["alice-key-1", "alice-key-2"]},
    {"name": "bob", "keys": ["bob-key-1"]},
    {"name": "carol", "keys": ["carol-key-1"]},
    {"name": "dave", "keys": ["dave-key-1"]},
]


def upstream(name: str, targets: list, **extra: Any) -> dict[str, Any]:
    return {"name": name, "targets": targets, "connect_timeout": "2s", **extra}


def route(name: str, paths: list[str], upstream_name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "paths": paths, "upstream": upstream_name, **extra}


def main_config(ups: Upstreams, dead_addr: str, blackhole_addr: str) -> dict[str, Any]:
    """The session gateway: most behaviour tests share it (routes are disjoint per test)."""
    a = ups.addr
    return {
        "workers": 2,
        "limits": {"max_body_bytes": "32m", "header_timeout": "10s"},
        "shutdown_grace": "10s",
        "upstreams": [
            upstream("echo", [a("echo")]),
            upstream("exact", [a("exact")]),
            upstream("param", [a("param")]),
            upstream("prefix", [a("prefix")]),
            upstream("host-exact", [a("host-exact")]),
            upstream("host-wild", [a("host-wild")]),
            upstream("rr", [a("rr1"), a("rr2")], balance="round_robin"),
            upstream(
                "weighted",
                [{"addr": a("w1"), "weight": 1}, {"addr": a("w3"), "weight": 3}],
                balance="weighted",
            ),
            upstream("lc", [a("lc1"), a("lc2")], balance="least_conn"),
            upstream("dead", [dead_addr], retries=0),
            upstream(
                "retry",
                [dead_addr, a("live")],
                balance="round_robin",
                retries=2,
                max_fails=1,
                # Short, so that the dead target comes back and the retry path is taken
                # repeatedly during the test instead of only once.
                fail_cooldown="200ms",
            ),
            upstream("slow", [a("echo")], read_timeout="500ms", retries=0),
            upstream("blackhole", [blackhole_addr], connect_timeout="500ms", retries=0),
            upstream(
                "eject",
                [dead_addr, a("live")],
                balance="round_robin",
                retries=0,
                max_fails=1,
                fail_cooldown="120s",
            ),
        ],
        "consumers": CONSUMERS,
        "routes": [
            route("exact", ["/api/items"], "exact", methods=["GET", "POST"]),
            route("param", ["/api/items/{id}"], "param", methods=["GET"]),
            route("prefix", ["/api/*"], "prefix"),
            route("host-exact", ["/h/*"], "host-exact", hosts=["api.example.com"]),
            route("host-wild", ["/h/*"], "host-wild", hosts=["*.example.com"]),
            route("echo", ["/echo/*"], "echo"),
            route("preserve", ["/preserve/*"], "echo", preserve_host=True),
            route(
                "auth",
                ["/auth/*"],
                "echo",
                plugins={"key-auth": {"hide_credentials": True}},
            ),
            route(
                "auth-visible",
                ["/authvis/*"],
                "echo",
                plugins={"key-auth": {"hide_credentials": False}},
            ),
            route(
                "limited",
                ["/limited/*"],
                "echo",
                plugins={
                    "key-auth": {"hide_credentials": True},
                    # A long period: refills are so slow that the test sees exact counts.
                    "rate-limit": {"rate": 2, "per": "60s", "burst": 2, "by": "consumer"},
                },
            ),
            route(
                "limited-ip",
                ["/limited-ip/*"],
                "echo",
                plugins={"rate-limit": {"rate": 3, "per": "60s", "by": "ip"}},
            ),
            route("rr", ["/rr"], "rr"),
            route("weighted", ["/weighted"], "weighted"),
            route("lc", ["/lc"], "lc"),
            route("dead", ["/dead/*"], "dead"),
            route("retry", ["/retry/*"], "retry"),
            route("slow", ["/slow/*"], "slow"),
            route("eject", ["/eject/*"], "eject"),
            route("blackhole", ["/blackhole/*"], "blackhole"),
        ],
    }


def simple_config(ups: Upstreams, **top: Any) -> dict[str, Any]:
    """One echo route at /echo/*; `top` overrides top-level keys (limits, admin, ...)."""
    cfg: dict[str, Any] = {
        "workers": 1,
        "upstreams": [upstream("echo", [ups.addr("echo")])],
        "routes": [route("echo", ["/echo/*"], "echo")],
    }
    cfg.update(top)
    return cfg
