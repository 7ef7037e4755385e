"""Load balancing: round robin spreads evenly, weighted follows weights, least_conn
prefers the idle target. Counts are over sequential requests, bounds are loose."""

from __future__ import annotations

import asyncio
from collections import Counter

import aiohttp
from support.client import TIMEOUT, afetch, get
from support.net import wait_until


def test_round_robin_spreads_evenly(gw):
    counts = Counter(get(gw.url("/rr")).json()["target"] for _ in range(40))
    assert set(counts) == {"rr1", "rr2"}
    assert 15 <= counts["rr1"] <= 25, counts


def test_weighted_follows_weights(gw):
    # Weights 1:3 -> expect 20:60 of 80.
    counts = Counter(get(gw.url("/weighted")).json()["target"] for _ in range(80))
    assert set(counts) == {"w1", "w3"}
    assert 50 <= counts["w3"] <= 70, counts


def test_least_conn_prefers_the_idle_target(gw, upstreams):
    async def scenario() -> tuple[str, list[str]]:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            # Occupy one target with a request that the upstream holds for 6 seconds.
            busy = asyncio.create_task(
                afetch(session, "GET", gw.url("/lc?mode=slow&delay=6&gate=lc-busy"))
            )
            await asyncio.to_thread(
                wait_until,
                lambda: upstreams.inflight("lc-busy") == 1,
                30,
                what="the slow request to reach the upstream",
            )
            quick = []
            for _ in range(10):
                resp = await afetch(session, "GET", gw.url("/lc"))
                quick.append(resp.json()["target"])
                if upstreams.inflight("lc-busy") != 1:
                    break  # the slow request finished: later picks would prove nothing
            busy_resp = await busy
            return busy_resp.json()["target"], quick

    busy_target, quick_targets = asyncio.run(scenario())
    assert len(quick_targets) >= 3, "the slow request ended too early to judge"
    idle_target = ({"lc1", "lc2"} - {busy_target}).pop()
    assert quick_targets == [idle_target] * len(quick_targets), (busy_target, quick_targets)
