"""rate-limit: 429 by consumer and by IP (the session gateway's /limited routes), and the
response headers: X-RateLimit-* agree with each other and with the bucket, and the IETF
draft's RateLimit-Policy / RateLimit fields (draft-ietf-httpapi-ratelimit-headers) parse
as Structured Fields and say the same thing (on `rl_gw`, a gateway of this module's own:
the session gateway `gw` serves the /limited routes)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import aiohttp
import http_sfv
import pytest
from support.client import Response, afetch, assert_json_error, get
from support.configs import route, simple_config
from support.gateway import Gateway, running


@pytest.fixture(scope="module")
def rl_gw(upstreams, tmp_path_factory) -> Iterator[Gateway]:
    cfg = simple_config(upstreams)
    cfg["routes"] += [
        route(
            "burst",
            ["/burst/*"],
            "echo",
            plugins={"rate-limit": {"rate": 5, "per": "1s", "burst": 10, "by": "ip"}},
        ),
        route(
            "steady",
            ["/steady/*"],
            "echo",
            plugins={"rate-limit": {"rate": 120, "per": "1m", "by": "route"}},
        ),
        route(
            "many",
            ["/many/*"],
            "echo",
            # A slow refill, so a loaded machine cannot serve 150 requests without a 429.
            plugins={"rate-limit": {"rate": 5, "per": "1s", "burst": 20, "by": "ip"}},
        ),
    ]
    with running(Gateway(tmp_path_factory.mktemp("rl_gw-rl-headers"), cfg)) as gateway:
        yield gateway


def parsed(resp: Response) -> dict:
    """Every rate-limit field of a response, the draft's fields parsed strictly."""
    policy = http_sfv.List()
    policy.parse(resp.header("ratelimit-policy").encode())
    current = http_sfv.List()
    current.parse(resp.header("ratelimit").encode())
    assert len(policy) == 1 and len(current) == 1, (policy, current)
    (p,), (c,) = policy, current
    assert isinstance(p.value, str) and p.value == c.value, (p, c)
    assert set(p.params) == {"q", "w"} and set(c.params) == {"r", "t"}, (p.params, c.params)
    assert all(isinstance(v, int) for v in [*p.params.values(), *c.params.values()])
    return {
        "limit": int(resp.header("x-ratelimit-limit")),
        "remaining": int(resp.header("x-ratelimit-remaining")),
        "reset": int(resp.header("x-ratelimit-reset")),
        "q": p.params["q"],
        "w": p.params["w"],
        "r": c.params["r"],
        "t": c.params["t"],
        "policy": resp.header("ratelimit-policy"),
    }


def burst_of(url: str, n: int) -> list[Response]:
    """`n` requests back to back on one keep-alive connection."""

    async def go() -> list[Response]:
        async with aiohttp.ClientSession() as session:
            return [await afetch(session, "GET", url) for _ in range(n)]

    return asyncio.run(go())


def check_consistent(fields: dict, rate_per_s: float) -> None:
    assert fields["limit"] == fields["q"], fields
    assert fields["remaining"] == fields["r"], fields
    assert fields["reset"] == fields["t"], fields
    assert 0 <= fields["remaining"] <= fields["limit"], fields
    assert 0 <= fields["reset"] <= fields["w"], fields
    # The policy's quota over its window never promises more than the sustained rate.
    assert fields["q"] / fields["w"] <= rate_per_s + 1e-9, fields


def test_headers_agree_while_the_bucket_drains(rl_gw: Gateway) -> None:
    responses = burst_of(rl_gw.url("/burst/x"), 14)
    allowed = [r for r in responses if r.status == 200]
    refused = [r for r in responses if r.status == 429]
    assert 10 <= len(allowed) <= 11 and refused, [r.status for r in responses]
    fields = [parsed(r) for r in responses]
    for f in fields:
        check_consistent(f, rate_per_s=5)
        assert f["limit"] == 10, f  # the bucket holds `burst` tokens
        assert f["w"] == 2, f  # 10 tokens at 5/s refill in 2 s
    remaining = [f["remaining"] for f, r in zip(fields, responses, strict=True) if r.status == 200]
    assert remaining[0] == 9, remaining
    assert all(b <= a for a, b in zip(remaining, remaining[1:], strict=False)), remaining
    assert remaining[-1] == 0, remaining
    assert len({f["policy"] for f in fields}) == 1, "the policy is the same on every response"


def test_429_says_when_to_retry_and_reset_says_when_full(rl_gw: Gateway) -> None:
    responses = burst_of(rl_gw.url("/burst/y"), 12)
    last = responses[-1]
    assert_json_error(last, 429, "rate_limited")
    fields = parsed(last)
    assert fields["remaining"] == 0 and fields["r"] == 0
    retry_after = int(last.header("retry-after"))
    assert 1 <= retry_after <= fields["reset"], (retry_after, fields)
    time.sleep(retry_after)
    assert get(rl_gw.url("/burst/y")).status == 200, "allowed again after Retry-After"
    # Reset is when the bucket is full again: after it, a burst of 10 passes once more.
    drained = parsed(burst_of(rl_gw.url("/burst/y"), 1)[0])
    time.sleep(drained["reset"] + 0.2)
    again = burst_of(rl_gw.url("/burst/y"), 10)
    assert [r.status for r in again] == [200] * 10
    assert parsed(again[0])["remaining"] == 9


def test_no_burst_means_limit_is_the_rate(rl_gw: Gateway) -> None:
    f = parsed(get(rl_gw.url("/steady/x")))
    check_consistent(f, rate_per_s=2)
    assert (f["limit"], f["w"]) == (120, 60), f


def test_remaining_never_exceeds_limit_over_many_requests(rl_gw: Gateway) -> None:
    async def go() -> list[Response]:
        async with aiohttp.ClientSession() as session:
            out = []
            for i in range(150):
                out.append(await afetch(session, "GET", rl_gw.url("/many/x")))
                if i % 10 == 0:
                    await asyncio.sleep(0.05)
            return out

    responses = asyncio.run(go())
    statuses = {r.status for r in responses}
    assert statuses == {200, 429}, statuses
    for r in responses:
        f = parsed(r)
        check_consistent(f, rate_per_s=5)
        assert f["limit"] == 20, f
        if r.status == 429:
            assert f["remaining"] == 0 and int(r.header("retry-after")) >= 1


def _ratelimit_headers(resp) -> tuple[int, int, int]:
    return (
        int(resp.header("x-ratelimit-limit")),
        int(resp.header("x-ratelimit-remaining")),
        int(resp.header("x-ratelimit-reset")),
    )


def test_rate_limit_by_consumer(gw):
    # rate 2 per 60s, burst 2: two pass, the third is refused; another consumer is not.
    key = {"apikey": "alice-key-1"}
    first = get(gw.url("/limited/a"), headers=key)
    second = get(gw.url("/limited/b"), headers=key)
    third = get(gw.url("/limited/c"), headers=key)

    assert first.status == 200 and second.status == 200
    limit, remaining, reset = _ratelimit_headers(first)
    assert (limit, remaining) == (2, 1)
    assert 0 <= reset <= 60
    limit, remaining, reset = _ratelimit_headers(second)
    assert (limit, remaining) == (2, 0)
    assert 0 < reset <= 60

    assert_json_error(third, 429, "rate_limited")
    retry_after = int(third.header("retry-after"))
    assert 1 <= retry_after <= 60
    limit, remaining, _ = _ratelimit_headers(third)
    assert (limit, remaining) == (2, 0)

    # The bucket is per consumer: alice's other key shares it, bob has his own.
    assert get(gw.url("/limited/d"), headers={"apikey": "alice-key-2"}).status == 429
    assert get(gw.url("/limited/e"), headers={"apikey": "bob-key-1"}).status == 200


def test_rate_limit_by_ip(gw):
    statuses = [get(gw.url(f"/limited-ip/{i}")).status for i in range(4)]
    assert statuses == [200, 200, 200, 429]
