"""Graceful shutdown: SIGTERM lets in-flight requests finish, exits 0, and every record
is in the store afterwards (read by `pygate logs query` opening chDB directly)."""

from __future__ import annotations

import asyncio
import signal
import uuid

import aiohttp
from support.client import TIMEOUT, afetch, get
from support.configs import simple_config
from support.net import port_open, wait_until


def test_sigterm_during_slow_request(make_gateway, upstreams):
    gw = make_gateway(simple_config(upstreams, shutdown_grace="20s"))
    tag = uuid.uuid4().hex[:8]
    quick_ids = [f"shut-{tag}-{i}" for i in range(5)]
    slow_id = f"shut-{tag}-slow"
    for rid in quick_ids:
        assert get(gw.url("/echo/before"), headers={"X-Request-Id": rid}).status == 200

    async def scenario():
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            slow = asyncio.create_task(
                afetch(
                    session,
                    "GET",
                    gw.url(f"/echo/slow?mode=slow&delay=3&gate={tag}"),
                    headers={"X-Request-Id": slow_id},
                )
            )
            # SIGTERM only once the request is at the upstream, i.e. truly in flight.
            await asyncio.to_thread(
                wait_until, lambda: upstreams.inflight(tag) == 1, 30, what="slow request"
            )
            gw.signal(signal.SIGTERM)
            return await slow

    resp = asyncio.run(scenario())
    assert resp.status == 200
    assert resp.json()["path"] == "/echo/slow"

    assert gw.proc.wait(60) == 0, gw.log_text()[-3000:]
    assert not port_open(gw.port)

    # The gateway is gone, so this opens the store directly.
    records = gw.records([*quick_ids, slow_id])
    assert records[slow_id]["status"] == 200
    assert all(records[rid]["status"] == 200 for rid in quick_ids)
    # Exactly one row per request: nothing lost, nothing doubled by the final flush.
    rows = gw.logs_query("SELECT count() AS n FROM pygate.requests")
    assert int(rows[0]["n"]) == len(quick_ids) + 1


def test_new_connections_refused_after_shutdown_starts(make_gateway, upstreams):
    gw = make_gateway(simple_config(upstreams, shutdown_grace="20s"))
    tag = uuid.uuid4().hex[:8]

    async def scenario():
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            slow = asyncio.create_task(
                afetch(session, "GET", gw.url(f"/echo/s?mode=slow&delay=4&gate={tag}"))
            )
            await asyncio.to_thread(
                wait_until, lambda: upstreams.inflight(tag) == 1, 30, what="slow request"
            )
            gw.signal(signal.SIGTERM)
            # While the slow request drains, the listener is closed to new clients.
            await asyncio.to_thread(
                wait_until, lambda: not port_open(gw.port), 15, what="listener closed"
            )
            return await slow

    assert asyncio.run(scenario()).status == 200
    assert gw.proc.wait(60) == 0
