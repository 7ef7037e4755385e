"""proxy-cache: misses, hits, expiry and Cache-Control, through the real gateway (each
test has its own path, so a cached answer never carries over); then the LRU store on
its own.
"""

from __future__ import annotations

import time

from support.builtin_gateway import builtin_gateway
from support.client import fetch, get
from support.configs import route


def plugin_routes() -> list[dict]:
    return [
        route(
            "cached",
            ["/cached/*"],
            "echo",
            plugins={"proxy-cache": {"ttl": "1500ms", "vary_headers": ["Accept-Language"]}},
        ),
    ]


gw = builtin_gateway(plugin_routes)


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


def test_lru_store_bounds_entries_and_bytes() -> None:
    from pygate.plugins.builtin.proxy_cache import Entry, LruStore

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
