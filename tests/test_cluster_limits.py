"""Cluster-wide rate limits on Redis (`cluster.redis`, `scope: cluster`): three real gateway
processes on their own ports share one real redis-server (started here, on a free loopback
port, in a temp dir).

- a limit of 300 req/min (burst 300), driven from all three nodes at once, admits its
  budget within 2% (burst + rate x elapsed), not three times it;
- Redis stopped under load: fail_open holds each node to its share (limit / 3 nodes, from
  the heartbeat), no request waits past the Redis timeout, the outage is logged once and
  counted in /metrics, and the shared limit resumes in Redis when it is back;
- a fail_closed node answers 503 with a JSON body while Redis hangs (SIGSTOP: every call
  times out), and again serves when it answers.
"""

from __future__ import annotations

import asyncio
import re
import signal
import time
from collections.abc import Iterator

import aiohttp
import pytest
from support.client import afetch, assert_json_error, get
from support.configs import route, simple_config
from support.gateway import Gateway, running
from support.net import wait_until
from support.redis_server import RedisServer, redis_available

pytestmark = pytest.mark.skipif(not redis_available(), reason="redis-server is not installed")

TIMEOUT_MS = 50


def node_config(upstreams, redis: RedisServer, **cluster) -> dict:
    cfg = simple_config(upstreams)
    cfg["log"] = {"enabled": False}
    cfg["cluster"] = {
        "redis": redis.url,
        "timeout": f"{TIMEOUT_MS}ms",
        "heartbeat": "200ms",
        "lease": 2,
        **cluster,
    }
    cfg["routes"] += [
        route(
            "shared",
            ["/shared/*"],
            "echo",
            plugins={"rate-limit": {"rate": 300, "per": "1m", "by": "route", "scope": "cluster"}},
        ),
        route(
            "outage",
            ["/outage/*"],
            "echo",
            plugins={
                "rate-limit": {
                    "rate": 600,
                    "per": "1m",
                    "burst": 30,
                    "by": "route",
                    "scope": "cluster",
                }
            },
        ),
    ]
    return cfg


@pytest.fixture(scope="module")
def redis(tmp_path_factory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def nodes(upstreams, redis, tmp_path_factory) -> Iterator[list[Gateway]]:
    gateways = [
        Gateway(tmp_path_factory.mktemp(f"node{i}"), node_config(upstreams, redis))
        for i in range(3)
    ]
    with running(gateways[0]), running(gateways[1]), running(gateways[2]):
        wait_until(
            lambda: all(metric(g, "pygate_cluster_nodes") == 3 for g in gateways),
            20,
            what="three nodes in the heartbeat",
        )
        yield gateways


def metric(gateway: Gateway, name: str) -> float:
    m = re.search(rf"^{name} ([0-9.e+]+)$", gateway.admin_text("/metrics"), re.M)
    return float(m.group(1)) if m else -1


async def drive(urls: list[str], per_url: int, concurrency: int = 6) -> list[tuple[int, float]]:
    """`per_url` GETs to each URL, `concurrency` at a time per URL: (status, seconds) each."""
    out: list[tuple[int, float]] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:

        async def worker(url: str, n: int) -> None:
            for _ in range(n):
                t = time.perf_counter()
                resp = await afetch(session, "GET", url)
                out.append((resp.status, time.perf_counter() - t))

        await asyncio.gather(
            *(worker(u, per_url // concurrency) for u in urls for _ in range(concurrency))
        )
    return out


def test_three_nodes_share_one_budget(nodes):
    urls = [g.url("/shared/x") for g in nodes]
    start = time.monotonic()
    results = asyncio.run(drive(urls, per_url=300))
    elapsed = time.monotonic() - start
    admitted = sum(1 for s, _ in results if s == 200)
    refused = sum(1 for s, _ in results if s == 429)
    assert admitted + refused == len(results), {s for s, _ in results}
    # GCRA: a full bucket of 300, refilled at 5/s while the load runs.
    expected = 300 + 5 * elapsed
    assert abs(admitted - expected) <= 0.02 * expected, (admitted, expected, elapsed)
    # The bucket is empty on every node: a refill (one token per 200 ms) may let one
    # request through since the load ended, the next ones are refused with the headers.
    resp = get(nodes[1].url("/shared/x"))
    for _ in range(3):
        if resp.status == 429:
            break
        resp = get(nodes[1].url("/shared/x"))
    assert resp.status == 429
    assert resp.header("ratelimit-policy") == '"route";q=300;w=60'
    assert resp.header("x-ratelimit-remaining") == "0"
    assert int(resp.header("retry-after")) >= 1


def test_redis_down_fail_open_then_resumes(nodes, redis):
    node = nodes[0]
    down_before = metric(node, "pygate_cluster_redis_down_total")
    redis.stop()
    try:
        wait_until(
            lambda: metric(node, "pygate_cluster_redis_up") == 0, 10, what="node sees Redis down"
        )
        start = time.monotonic()
        results = asyncio.run(drive([node.url("/outage/x")], per_url=240, concurrency=4))
        elapsed = time.monotonic() - start
    finally:
        redis.start()
    admitted = sum(1 for s, _ in results if s == 200)
    slowest = max(t for _, t in results)
    # Its share: 600/min / 3 nodes = 10/3 per s, burst 30 / 3 = 10.
    share = 10 + (600 // 3) / 60 * elapsed
    assert 0 < admitted <= share + 2, (admitted, share, elapsed)
    assert slowest < 0.5, f"a request took {slowest:.3f}s with Redis down"
    assert metric(node, "pygate_cluster_redis_down_total") == down_before + 1
    assert metric(node, "pygate_cluster_fallback_decisions_total") >= len(results)
    assert node.log_count("is unreachable") == 1, node.log_text()[-2000:]
    # Back: the shared bucket lives in Redis again.
    wait_until(lambda: metric(node, "pygate_cluster_redis_up") == 1, 15, what="Redis back")
    fallback = metric(node, "pygate_cluster_fallback_decisions_total")
    for _ in range(5):
        assert get(node.url("/outage/x")).status == 200
    assert metric(node, "pygate_cluster_fallback_decisions_total") == fallback
    wait_until(
        lambda: "rl:outage:route" in redis.command("KEYS", "pygate:rl:*"),
        5,
        what="the bucket in Redis",
    )
    assert node.log_count("answers again") == 1


def test_fail_closed_answers_503_while_redis_hangs(upstreams, redis, tmp_path):
    cfg = node_config(upstreams, redis, on_redis_down="fail_closed", key_prefix="closed:")
    with running(Gateway(tmp_path / "closed", cfg)) as gw:
        wait_until(lambda: metric(gw, "pygate_cluster_redis_up") == 1, 15, what="Redis up")
        assert get(gw.url("/outage/x")).status == 200
        redis.proc.send_signal(signal.SIGSTOP)  # every Redis call now times out
        try:
            wait_until(
                lambda: metric(gw, "pygate_cluster_redis_up") == 0, 10, what="node sees Redis hang"
            )
            results = asyncio.run(drive([gw.url("/outage/x")], per_url=60, concurrency=3))
            assert {s for s, _ in results} == {503}
            assert max(t for _, t in results) < 0.5
            doc = assert_json_error(get(gw.url("/outage/x")), 503, "rate_limit_unavailable")
            assert "fail_closed" in doc["message"]
        finally:
            redis.proc.send_signal(signal.SIGCONT)
        wait_until(lambda: get(gw.url("/outage/x")).status == 200, 15, what="serving again")
        assert gw.log_count("is unreachable") == 1
