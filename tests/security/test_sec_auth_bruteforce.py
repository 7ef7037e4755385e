"""Credential guessing: failed authentications are limited per client address.

`limits.auth_failures` is a token bucket per client IP (an IPv6 client per /64) that each
failed key-auth, basic-auth or jwt authentication drains. Once it is empty that address
gets 429 `auth_blocked` with Retry-After on every authenticated route, a correct
credential included (as fail2ban bans an address, and so a guess that happens to be right
is not told apart), until a token is back; routes without authentication still serve it.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import time
import uuid
from collections.abc import Iterator

import aiohttp
import jwt as pyjwt
import pytest
from support.client import Response, afetch, assert_json_error, get, read_response
from support.configs import route, simple_config
from support.gateway import Gateway, running

SECRET = "an-hs256-secret-of-at-least-32-bytes!"
BURST = 5
CONSUMERS = [
    {"name": "alice", "keys": ["alice-key"], "basic_auth": [{"username": "al", "password": "pw"}]}
]


def config(upstreams, **limits) -> dict:
    cfg = simple_config(upstreams, consumers=CONSUMERS, limits=limits)
    cfg["routes"] += [
        route("keyed", ["/keyed/*"], "echo", plugins={"key-auth": {}}),
        route("basic", ["/basic/*"], "echo", plugins={"basic-auth": {}}),
        route("jwt", ["/jwt/*"], "echo", plugins={"jwt": {"secrets": [SECRET]}}),
    ]
    return cfg


@pytest.fixture
def gw(upstreams, tmp_path) -> Iterator[Gateway]:
    limits = {"auth_failures": {"rate": 2, "per": "1s", "burst": BURST}}
    with running(Gateway(tmp_path / "gw", config(upstreams, **limits))) as gateway:
        yield gateway


def many(url: str, n: int, headers: dict[str, str]) -> list[Response]:
    """`n` requests on one keep-alive connection, as a guessing script sends them."""

    async def go() -> list[Response]:
        async with aiohttp.ClientSession() as session:
            return [await afetch(session, "GET", url, headers=headers) for _ in range(n)]

    return asyncio.run(go())


def from_address(gw: Gateway, source: str, path: str, headers: dict[str, str]):
    """One request from another loopback address (127.0.0.0/8 is all local on Linux)."""
    with socket.create_connection(
        ("127.0.0.1", gw.port), timeout=10, source_address=(source, 0)
    ) as s:
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode())
        return read_response(s)


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def bearer(claims: dict, secret: str = SECRET) -> dict[str, str]:
    return {"Authorization": f"Bearer {pyjwt.encode(claims, secret, algorithm='HS256')}"}


def test_guessing_keys_is_cut_off_then_recovers(gw: Gateway) -> None:
    statuses = [r.status for r in many(gw.url("/keyed/x"), 12, {"apikey": "guess"})]
    assert statuses == [401] * BURST + [429] * (12 - BURST), statuses
    blocked = get(gw.url("/keyed/x"), headers={"apikey": "guess-again"})
    assert "failed authentications" in assert_json_error(blocked, 429, "auth_blocked")["message"]
    retry_after = int(blocked.header("retry-after"))
    assert 1 <= retry_after <= 1, retry_after  # one token back at 2/s
    # Even the right key is refused while blocked: a correct guess must look like the rest.
    assert_json_error(get(gw.url("/keyed/x"), headers={"apikey": "alice-key"}), 429, "auth_blocked")
    # A route without authentication still serves this address.
    assert get(gw.url("/echo/x")).status == 200
    time.sleep(retry_after + 0.1)
    assert get(gw.url("/keyed/x"), headers={"apikey": "alice-key"}).status == 200
    # A success costs nothing; the next failure takes the token that came back.
    assert get(gw.url("/keyed/x"), headers={"apikey": "alice-key"}).status == 200


def test_one_budget_across_auth_kinds_and_routes(gw: Gateway) -> None:
    exp = int(time.time()) + 60
    attempts = [
        ("/basic/x", basic("al", "wrong")),
        ("/basic/x", basic("nobody", "pw")),
        ("/jwt/x", bearer({"sub": "a", "exp": exp}, SECRET.upper())),
        ("/jwt/x", {"Authorization": "Bearer not-a-jwt"}),
        ("/keyed/x", {}),  # no credential at all is a failure too
    ]
    for path, headers in attempts:
        assert get(gw.url(path), headers=headers).status == 401, path
    for path, headers in [
        ("/basic/x", basic("al", "pw")),
        ("/jwt/x", bearer({"sub": "a", "exp": exp})),
        ("/keyed/x", {"apikey": "alice-key"}),
    ]:
        assert_json_error(get(gw.url(path), headers=headers), 429, "auth_blocked")


def test_other_addresses_are_not_blocked(gw: Gateway) -> None:
    many(gw.url("/keyed/x"), BURST + 2, {"apikey": "guess"})
    assert get(gw.url("/keyed/x"), headers={"apikey": "alice-key"}).status == 429
    other = from_address(gw, "127.0.0.2", "/keyed/x", {"apikey": "alice-key"})
    assert other.status == 200, other.body[:200]
    third = from_address(gw, "127.0.0.3", "/keyed/x", {"apikey": "nope"})
    assert third.status == 401


def test_blocked_calls_are_counted_and_recorded(gw: Gateway) -> None:
    rid = uuid.uuid4().hex
    many(gw.url("/keyed/x"), BURST, {"apikey": "guess"})
    blocked = get(gw.url("/keyed/x"), headers={"apikey": "guess", "X-Request-ID": rid})
    assert blocked.status == 429
    status = gw.admin_get("/status")[1]
    assert status["auth_failures_total"] == BURST, status
    assert status["auth_blocked_total"] == 1, status
    record = gw.records([rid])[rid]
    assert (record["status"], record["error_kind"]) == (429, "auth_blocked")
    metrics = gw.admin_text("/metrics")
    assert f"pygate_auth_failures_total {BURST}" in metrics
    assert "pygate_auth_blocked_total 1" in metrics


def test_on_by_default_with_a_generous_budget(upstreams, tmp_path) -> None:
    with running(Gateway(tmp_path / "default", config(upstreams))) as gw:
        statuses = [r.status for r in many(gw.url("/keyed/x"), 130, {"apikey": "guess"})]
    assert statuses[:100] == [401] * 100, statuses
    assert statuses.count(429) >= 25, statuses


def test_can_be_turned_off(upstreams, tmp_path) -> None:
    with running(Gateway(tmp_path / "off", config(upstreams, auth_failures=None))) as gw:
        statuses = {r.status for r in many(gw.url("/keyed/x"), 150, {"apikey": "guess"})}
    assert statuses == {401}
