"""circuit-breaker: opens on failures, half-opens for one probe, closes again, through the
real gateway (each test has its own route, so a breaker never carries over); then the
breaker's logic on its own, with explicit times, for what is slow or timing-bound to
show through HTTP.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request

import aiohttp
import pytest
from support.builtin_gateway import builtin_gateway
from support.client import TIMEOUT, afetch, assert_json_error, get
from support.configs import route
from support.net import wait_until


def plugin_routes() -> list[dict]:
    return [
        route(
            "breaker",
            ["/breaker/*"],
            "echo",
            plugins={"circuit-breaker": {"failures": 3, "cooldown": "2s"}},
        ),
        route(
            "breaker-dead",
            ["/breaker-dead/*"],
            "dead",
            plugins={"circuit-breaker": {"failures": 2, "cooldown": "30s"}},
        ),
    ]


gw = builtin_gateway(plugin_routes)


def test_circuit_breaker_opens_half_opens_and_closes(gw, upstreams) -> None:
    failing = gw.url("/breaker/x?mode=status&code=500")
    for _ in range(3):
        assert get(failing).status == 500
    refused = get(gw.url("/breaker/x"))  # a good request, but the circuit is open
    error = assert_json_error(refused, 503, "circuit_open")
    assert refused.header("retry-after") in ("1", "2")  # the cooldown is 2s
    record = gw.records([error["request_id"]])[error["request_id"]]
    # not sent upstream; the breaker's refusal kind is the call's error_kind
    assert (record["status"], record["upstream_addr"], record["error_kind"]) == (
        503,
        "",
        "circuit_open",
    )

    time.sleep(2.1)  # past the cooldown: half-open, the next request is the probe
    gate = f"cb-{time.monotonic_ns()}"

    def probe_at_upstream() -> bool:
        url = f"http://{upstreams.addr('echo')}/__inflight?gate={gate}"
        return json.loads(urllib.request.urlopen(url).read())["inflight"] == 1

    async def probe_and_other() -> tuple[int, int]:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            probe_url = gw.url(f"/breaker/probe?mode=slow&delay=1&gate={gate}")
            probe = asyncio.create_task(afetch(session, "GET", probe_url))
            await asyncio.to_thread(wait_until, probe_at_upstream, 10, what="probe upstream")
            other = await afetch(session, "GET", gw.url("/breaker/other"))
            return (await probe).status, other.status

    probe_status, other_status = asyncio.run(probe_and_other())
    assert (probe_status, other_status) == (200, 503)  # one probe at a time
    assert get(gw.url("/breaker/x")).status == 200  # the probe succeeded: closed again
    assert get(failing).status == 500  # and counting from zero: one failure does not open
    assert get(gw.url("/breaker/x")).status == 200


def test_circuit_breaker_counts_upstream_errors(gw) -> None:
    for _ in range(2):
        assert_json_error(get(gw.url("/breaker-dead/x")), 502, "upstream_unavailable")

    def refused() -> bool:
        # Upstream errors reach the breaker through the log phase, a moment after the 502.
        resp = get(gw.url("/breaker-dead/x"))
        return resp.status == 503 and resp.json()["error"]["kind"] == "circuit_open"

    deadline = time.monotonic() + 10
    while not refused():
        assert time.monotonic() < deadline, "the circuit never opened"
        time.sleep(0.1)
    assert int(get(gw.url("/breaker-dead/x")).header("retry-after")) > 20


def test_breaker_failure_ratio_and_stale_probe() -> None:
    from pygate.config.units import Duration
    from pygate.plugins.builtin.circuit_breaker import Breaker, CircuitBreakerConfig

    config = CircuitBreakerConfig(
        failures=100,
        failure_ratio=0.5,
        window=Duration(10_000),
        min_requests=4,
        cooldown=Duration(2_000),
    )
    breaker = Breaker(config)
    outcomes = [False, True, False, True]  # 2 of 4 failed: the ratio is reached at the 4th
    changes = [breaker.observe(f"r{i}", failed, now=float(i)) for i, failed in enumerate(outcomes)]
    assert changes == [None, None, None, "open"]
    assert breaker.admit("x", now=4.0) == pytest.approx(1.0)  # open until 3 + 2 s
    assert breaker.admit("probe1", now=5.0) is None  # half-open: the probe goes through
    assert breaker.admit("x", now=6.0) == pytest.approx(1.0)  # one probe at a time
    assert breaker.observe("late", False, now=6.5) is None  # not the probe: ignored
    assert breaker.admit("probe2", now=7.0) is None  # probe1 never reported: replaced
    assert breaker.observe("probe2", True, now=7.5) == "open"
    assert breaker.admit("probe3", now=9.5) is None
    assert breaker.observe("probe3", False, now=9.6) == "closed"
    # Old outcomes leave the window: 2 failures 20 s ago do not count any more.
    assert breaker.observe("a", True, now=10.0) is None
    assert breaker.observe("b", True, now=10.0) is None
    assert [breaker.observe(c, False, now=30.0) for c in "cdef"] == [None] * 4
