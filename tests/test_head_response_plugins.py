"""HEAD through a route with Python response plugins: the Content-Length is the one a GET
gets (what the upstream sent), not the length of the empty HEAD body (RFC 9110 §9.3.2)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.client import fetch
from support.configs import route, simple_config
from support.gateway import Gateway, running

TAG = {"response-transformer": {"add": {"headers": {"X-Served-By": "pygate"}}}}


@pytest.fixture(scope="module")
def gw(upstreams, tmp_path_factory) -> Iterator[Gateway]:
    cfg = simple_config(upstreams)
    cfg["routes"] += [
        route("tagged", ["/tagged/*"], "echo", plugins=TAG),
        route("plain", ["/plain/*"], "echo"),
    ]
    with running(Gateway(tmp_path_factory.mktemp("gw-head"), cfg)) as gateway:
        yield gateway


@pytest.mark.parametrize("size", [0, 1, 12_345, 3_000_000])
def test_head_sends_the_get_length(gw: Gateway, size: int) -> None:
    query = f"?mode=bytes&size={size}"
    got = fetch("GET", gw.url(f"/tagged/x{query}"))
    assert got.status == 200 and len(got.body) == size
    assert got.header("x-served-by") == "pygate"
    head = fetch("HEAD", gw.url(f"/tagged/x{query}"))
    assert head.status == 200 and head.body == b""
    assert head.header("x-served-by") == "pygate", "the plugin ran"
    # What the upstream itself says on HEAD (aiohttp leaves out a zero length).
    plain = fetch("HEAD", gw.url(f"/plain/x{query}"))
    assert head.header("content-length") == plain.header("content-length"), head.headers
    if size:
        assert head.header("content-length") == str(size), head.headers
    assert head.header("x-body-sha256") == got.header("x-body-sha256")


def test_head_matches_a_route_without_plugins(gw: Gateway) -> None:
    # The echo reply's length depends on the request, so compare HEAD with HEAD.
    plain = fetch("HEAD", gw.url("/plain/x"))
    tagged = fetch("HEAD", gw.url("/tagged/x"))
    assert plain.header("content-length") and plain.header("content-length") != "0"
    assert abs(int(tagged.header("content-length")) - int(plain.header("content-length"))) < 16
