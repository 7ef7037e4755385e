"""The built-in Python plugins that keep state, through the real gateway and a real
upstream: proxy-cache and circuit-breaker (each test has its own route, so a cache or a
breaker never carries over between tests); then the plugins' logic on its own, with
explicit times, for what is slow or timing-bound to show through HTTP.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Iterator

import aiohttp
import pytest
from support.builtin_gateway import run_gateway
from support.client import TIMEOUT, afetch, assert_json_error, fetch, get
from support.configs import route
from support.gateway import Gateway
from support.net import wait_until


def plugin_routes() -> list[dict]:
    return [
        route(
            "cached",
            ["/cached/*"],
            "echo",
            plugins={"proxy-cache": {"ttl": "1500ms", "vary_headers": ["Accept-Language"]}},
        ),
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


@pytest.fixture(scope="module")
def gw(upstreams, dead_addr, tmp_path_factory) -> Iterator[Gateway]:
    workdir = tmp_path_factory.mktemp("gw-builtins-state")
    yield from run_gateway(workdir, upstreams, dead_addr, plugin_routes())


# ----- proxy-cache ---------------------------------------------------------------------


def echoed_request_id(resp) -> str:
    """The X-Request-Id the upstream saw: a cached answer carries an older call's id."""
    return resp.upstream_headers()["x-request-id"]


def test_proxy_cache_miss_hit_and_expiry(gw) -> None:
    url = gw.url(f"/cached/item?n={time.monotonic_ns()}")
    first = get(url)
    assert first.status == 200 and first.header("x-cache-status") == "MISS"
    hit = get(url)
    assert hit.header("x-cache-status") == "HIT"
    assert hit.body == first.body  # the first call's answer, not a new one
    assert echoed_request_id(hit) == first.header("x-request-id") != hit.header("x-request-id")
    assert hit.header("age") in ("0", "1")
    assert hit.header("content-type") == first.header("content-type")
    # A vary header is part of the key.
    other_language = get(url, headers={"Accept-Language": "fr"})
    assert other_language.header("x-cache-status") == "MISS"
    record = gw.records([hit.header("x-request-id")])[hit.header("x-request-id")]
    assert (record["status"], record["upstream_addr"]) == (200, "")  # never went upstream
    time.sleep(1.6)  # ttl is 1500ms
    expired = get(url)
    assert expired.header("x-cache-status") == "MISS"
    assert echoed_request_id(expired) == expired.header("x-request-id")


def test_proxy_cache_respects_cache_control(gw) -> None:
    n = time.monotonic_ns()
    no_store = gw.url(f"/cached/a?n={n}&resp_header=Cache-Control:no-store")
    assert get(no_store).header("x-cache-status") == "MISS"
    assert get(no_store).header("x-cache-status") == "MISS"  # never stored
    private = gw.url(f"/cached/b?n={n}&resp_header=Cache-Control:private,max-age=60")
    get(private)
    assert get(private).header("x-cache-status") == "MISS"

    url = gw.url(f"/cached/c?n={n}")
    assert get(url).header("x-cache-status") == "MISS"
    fresh = get(url, headers={"Cache-Control": "no-cache"})
    assert fresh.header("x-cache-status") == "BYPASS"
    assert echoed_request_id(fresh) == fresh.header("x-request-id")  # fetched anew
    hit = get(url)
    assert hit.header("x-cache-status") == "HIT"
    assert echoed_request_id(hit) == fresh.header("x-request-id")  # the refreshed copy

    head = gw.url(f"/cached/e?n={n}")
    assert fetch("HEAD", head).header("x-cache-status") == "MISS"
    cached_head = fetch("HEAD", head)
    assert cached_head.status == 200 and cached_head.header("x-cache-status") == "HIT"
    assert cached_head.body == b""
    post = fetch("POST", url, data=b"x")
    assert post.status == 200 and post.header("x-cache-status") == "BYPASS"
    failed = gw.url(f"/cached/d?n={n}&mode=status&code=404")
    assert get(failed).header("x-cache-status") == "MISS"
    assert get(failed).header("x-cache-status") == "MISS"  # only 200 is stored


# ----- circuit-breaker -----------------------------------------------------------------


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


# ----- the plugins' logic on its own (no gateway) ---------------------------------------


def test_breaker_failure_ratio_and_stale_probe() -> None:
    from pygate.config.units import Duration
    from pygate.plugins.circuit_breaker import Breaker, CircuitBreakerConfig

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


def test_lru_store_bounds_entries_and_bytes() -> None:
    from pygate.plugins.proxy_cache import Entry, LruStore

    def entry(size: int) -> Entry:
        return Entry(200, [], b"x" * size, stored_at=0.0, expires_at=100.0)

    store = LruStore(max_entries=3, max_bytes=3 * (100 + 128))
    for key in "abc":
        store.put(key, entry(100))
    assert store.get("a", now=1.0) is not None  # a is now the most recently used
    store.put("d", entry(100))  # over max_entries: b (least recently used) goes
    assert sorted(store.entries) == ["a", "c", "d"]
    store.put("e", entry(400))  # over max_bytes: c, a and d go until it fits
    assert list(store.entries) == ["e"] and store.bytes == 400 + 128
    assert store.get("e", now=100.0) is None and store.bytes == 0  # expired


def test_smooth_weighted_split_is_exact_and_spread() -> None:
    from pygate.plugins.traffic_split import SmoothWeighted

    split = SmoothWeighted([("canary", 10.0), (None, 90.0)])
    picks = [split.pick() for _ in range(100)]
    assert picks.count("canary") == 10
    # Spread out: never two canary picks within a run of 10.
    positions = [i for i, p in enumerate(picks) if p == "canary"]
    assert all(b - a == 10 for a, b in zip(positions, positions[1:], strict=False))


def test_transform_ops_follow_kong_semantics() -> None:
    from pygate.plugins.transform_ops import JsonEdits, PairEdits, edit_json, edit_pairs

    pairs = [("X-A", "1"), ("x-a", "2"), ("X-B", "3")]
    edits = PairEdits(replace={"x-a": "9", "x-missing": "0"}, add={"X-B": "no", "X-C": "4"})
    assert edit_pairs(pairs, edits, case_insensitive=True) == [
        ("x-a", "9"),
        ("X-B", "3"),
        ("X-C", "4"),
    ]
    assert edit_pairs([("A", "1")], PairEdits(remove=["a"]), case_insensitive=False) == [
        ("A", "1")  # query args are case-sensitive
    ]
    doc = {"one": 1, "many": [1], "old": "x"}
    edits = JsonEdits(rename={"old": "new"}, append={"one": 2, "many": 2, "none": 3})
    assert edit_json(doc, edits) == {"one": [1, 2], "many": [1, 2], "new": "x", "none": [3]}
