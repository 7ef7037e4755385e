"""gRPC through the gateway to a real grpcio server reached over h2c: messages and
trailers (grpc-status, custom trailing metadata) relayed, the gRPC status in the call
record, and the gateway's own refusals in gRPC's form (HTTP 200 + grpc-status/message).

The client side here is gRPC's wire format over HTTP/1.1 with `te: trailers` (the
gateway relays gRPC's trailers as chunked trailer fields), so every frame is checked as
sent.
"""

from __future__ import annotations

import pytest
from support.client import assert_json_error, get
from support.configs import route, upstream
from support.grpc_upstream import GrpcUpstream, call_over_http1
from support.net import free_port


@pytest.fixture(scope="module")
def grpc_up():
    with GrpcUpstream() as up:
        yield up


@pytest.fixture
def gw(make_gateway, grpc_up):
    dead = f"127.0.0.1:{free_port()}"
    return make_gateway(
        {
            "workers": 1,
            "consumers": [{"name": "alice", "keys": ["alice-key"]}],
            "upstreams": [
                upstream("grpc", [grpc_up.addr], protocol="h2c"),
                upstream("gone", [dead], protocol="h2c", retries=0),
            ],
            "routes": [
                route("open", ["/test.Echo/*"], "grpc"),
                route("keyed", ["/keyed/*"], "grpc", plugins={"key-auth": None}),
                route(
                    "limited",
                    ["/limited/*"],
                    "grpc",
                    plugins={"rate-limit": {"rate": 1, "per": "1h", "burst": 1, "by": "route"}},
                ),
                route("down", ["/down/*"], "gone"),
            ],
        }
    )


UNARY = "/test.Echo/Unary"


def test_unary_call_with_trailers(gw, grpc_up):
    reply = call_over_http1(gw.port, UNARY, b"hello")
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/grpc"
    assert reply.messages == [b"echo:hello"]
    assert reply.trailers["grpc-status"] == "0", reply
    # HTTP/1.1 carries only announced trailers: the gateway announces gRPC's own.
    assert reply.headers["trailer"].startswith("grpc-status")
    rid = reply.headers["x-request-id"]
    record = gw.records([rid])[rid]
    assert record["grpc_status"] == "0"
    assert (record["status"], record["route"]) == (200, "open")
    assert record["upstream_addr"] == grpc_up.addr


def test_server_streaming_call(gw):
    reply = call_over_http1(gw.port, "/test.Echo/Stream", b"4")
    assert reply.messages == [b"part-0", b"part-1", b"part-2", b"part-3"]
    assert reply.trailers["grpc-status"] == "0"


def test_client_streaming_call(gw):
    reply = call_over_http1(gw.port, "/test.Echo/Join", [b"a", b"b", b"c"])
    assert reply.messages == [b"a+b+c"]
    assert reply.trailers["grpc-status"] == "0"


def test_upstream_error_status_is_relayed_and_recorded(gw):
    reply = call_over_http1(gw.port, "/test.Echo/Fail", b"x")
    assert reply.status == 200
    assert reply.grpc_status == "5", reply  # NOT_FOUND, from the server
    message = reply.trailers.get("grpc-message") or reply.headers.get("grpc-message")
    assert message == "no such thing"
    rid = reply.headers["x-request-id"]
    assert gw.records([rid])[rid]["grpc_status"] == "5"


@pytest.mark.parametrize(
    ("path", "grpc_status", "http_status", "kind"),
    [
        ("/keyed" + UNARY, "16", 401, "unauthorized"),  # UNAUTHENTICATED
        ("/down" + UNARY, "14", 502, "upstream_unavailable"),  # UNAVAILABLE
        ("/nowhere" + UNARY, "12", 404, "no_route"),  # UNIMPLEMENTED
    ],
)
def test_gateway_refusals_are_grpc_statuses(gw, path, grpc_status, http_status, kind):
    reply = call_over_http1(gw.port, path, b"x")
    # gRPC clients read grpc-status, and only from an HTTP 200: a trailers-only answer.
    assert reply.status == 200, reply
    assert reply.headers["content-type"] == "application/grpc"
    assert reply.headers["grpc-status"] == grpc_status, reply
    assert reply.headers["grpc-message"]
    assert reply.messages == []
    rid = reply.headers["x-request-id"]
    record = gw.records([rid])[rid]
    # The record keeps what the refusal means in HTTP terms, and the gRPC status sent.
    assert (record["status"], record["error_kind"]) == (http_status, kind)
    assert record["grpc_status"] == grpc_status


def test_rate_limited_grpc_call_is_resource_exhausted(gw):
    first = call_over_http1(gw.port, "/limited" + UNARY, b"a")
    assert "retry-after" not in first.headers
    second = call_over_http1(gw.port, "/limited" + UNARY, b"a")
    assert second.status == 200
    assert second.headers["grpc-status"] == "8", second  # RESOURCE_EXHAUSTED
    assert "retry-after" in second.headers
    rid = second.headers["x-request-id"]
    assert gw.records([rid])[rid]["status"] == 429


def test_authenticated_grpc_call_reaches_the_server(gw, grpc_up):
    reply = call_over_http1(gw.port, "/keyed" + UNARY, b"x", {"apikey": "alice-key"})
    # The server has no method at /keyed/...: UNIMPLEMENTED is its answer, not a refusal.
    assert reply.grpc_status == "12", reply
    rid = reply.headers["x-request-id"]
    record = gw.records([rid])[rid]
    assert (record["error_kind"], record["consumer"]) == ("", "alice")
    assert record["upstream_addr"] == grpc_up.addr


def test_non_grpc_calls_keep_json_errors_and_record_no_grpc_status(gw):
    resp = get(gw.url("/nowhere/plain"))
    assert_json_error(resp, 404, "no_route")
    assert "grpc-status" not in resp.headers
    rid = resp.header("x-request-id")
    assert gw.records([rid])[rid]["grpc_status"] == ""
