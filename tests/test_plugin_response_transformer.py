"""response-transformer: edits the headers and JSON body of an answer, through the real
gateway; a streamed answer keeps its body, and HEAD through a route with this Python
response plugin gets the Content-Length a GET gets (what the upstream sent), not the
length of the empty HEAD body (RFC 9110 §9.3.2).
"""

from __future__ import annotations

import time
import urllib.request

import pytest
from support.builtin_gateway import builtin_gateway
from support.client import fetch, get
from support.configs import route
from support.gateway import Gateway

TAG = {"response-transformer": {"add": {"headers": {"X-Served-By": "pygate"}}}}


def plugin_routes() -> list[dict]:
    return [
        route(
            "rt-resp",
            ["/rt-resp/*"],
            "echo",
            plugins={
                "response-transformer": {
                    "remove": {"headers": ["X-Upstream-Target"], "json": ["headers"]},
                    "rename": {"json": {"target": "site"}},
                    "add": {"headers": {"X-Served-By": "pygate"}, "json": {"api_version": 2}},
                }
            },
        ),
        route("tagged", ["/tagged/*"], "echo", plugins=TAG),
        route("plain", ["/plain/*"], "echo"),
    ]


gw = builtin_gateway(plugin_routes)


def test_response_transformer_edits_headers_and_json(gw) -> None:
    resp = get(gw.url("/rt-resp/thing?a=1"))
    assert resp.status == 200
    assert resp.header("x-upstream-target") is None
    assert resp.header("x-served-by") == "pygate"
    doc = resp.json()
    assert doc["site"] == "echo" and "target" not in doc
    assert "headers" not in doc
    assert doc["api_version"] == 2
    assert doc["path"] == "/rt-resp/thing"
    assert int(resp.header("content-length")) == len(resp.body)


def test_response_transformer_changes_only_headers_of_a_streamed_response(gw, upstreams) -> None:
    gate = f"rt-sse-{time.monotonic_ns()}"
    # Open the gate first, so the event stream ends without waiting.
    urllib.request.urlopen(f"http://{upstreams.addr('echo')}/__release?gate={gate}").read()
    resp = get(gw.url(f"/rt-resp/events?mode=sse&n=2&gate={gate}"))
    assert resp.status == 200
    assert resp.header("content-type").startswith("text/event-stream")
    assert resp.header("x-served-by") == "pygate"
    assert resp.body == b"id: 1\ndata: first from echo\n\nid: 2\ndata: event 2 from echo\n\n"


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
