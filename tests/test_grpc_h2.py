"""gRPC end to end with grpcio on both sides: a grpcio client speaking h2c (prior knowledge)
to the gateway, which relays to a grpcio server over h2c. Unary, server-, client- and
bidirectional streaming, trailing metadata, the server's error statuses and the
gateway's own refusals as gRPC status codes, and the status in the call record."""

from __future__ import annotations

import grpc
import pytest
from support.configs import route, upstream
from support.grpc_upstream import SERVICE, GrpcUpstream
from support.net import free_port

TIMEOUT = 30


@pytest.fixture(scope="module")
def grpc_up():
    with GrpcUpstream() as up:
        yield up


@pytest.fixture(scope="module")
def gw(grpc_up, tmp_path_factory):
    from support.gateway import Gateway, running

    config = {
        "workers": 1,
        "http2": {"h2c": True},
        "consumers": [{"name": "alice", "keys": ["alice-key"]}],
        "upstreams": [
            upstream("grpc", [grpc_up.addr], protocol="h2c"),
            upstream("gone", [f"127.0.0.1:{free_port()}"], protocol="h2c", retries=0),
        ],
        "routes": [
            route("open", [f"/{SERVICE}/*"], "grpc"),
            route("keyed", ["/keyed.Echo/*"], "grpc", plugins={"key-auth": None}),
            route(
                "limited",
                ["/limited.Echo/*"],
                "grpc",
                plugins={"rate-limit": {"rate": 1, "per": "1h", "burst": 1, "by": "route"}},
            ),
            route("down", ["/down.Echo/*"], "gone"),
        ],
    }
    with running(Gateway(tmp_path_factory.mktemp("gw-grpc"), config)) as gateway:
        yield gateway


@pytest.fixture
def channel(gw):
    with grpc.insecure_channel(f"127.0.0.1:{gw.port}") as ch:
        yield ch


def request_id(call) -> str:
    # A trailers-only answer (no messages) has its headers read as trailing metadata.
    metadata = dict(call.initial_metadata() or ()) | dict(call.trailing_metadata() or ())
    return metadata["x-request-id"]


def test_unary_with_trailing_metadata(gw, channel):
    method = channel.unary_unary(f"/{SERVICE}/Unary")
    reply, call = method.with_call(b"hello", timeout=TIMEOUT)
    assert reply == b"echo:hello"
    assert call.code() == grpc.StatusCode.OK
    assert dict(call.trailing_metadata())["x-trailer"] == "kept"
    rid = request_id(call)
    record = gw.records([rid])[rid]
    assert (record["grpc_status"], record["status"], record["route"]) == ("0", 200, "open")


def test_server_streaming(channel):
    stream = channel.unary_stream(f"/{SERVICE}/Stream")(b"5", timeout=TIMEOUT)
    assert list(stream) == [f"part-{i}".encode() for i in range(5)]
    assert stream.code() == grpc.StatusCode.OK


def test_client_streaming(channel):
    reply = channel.stream_unary(f"/{SERVICE}/Join")(iter([b"x", b"y", b"z"]), timeout=TIMEOUT)
    assert reply == b"x+y+z"


def test_bidirectional_streaming(channel):
    replies = channel.stream_stream(f"/{SERVICE}/Chat")(
        iter([b"one", b"two", b"three"]), timeout=TIMEOUT
    )
    assert list(replies) == [b"re:one", b"re:two", b"re:three"]


def test_server_error_status_reaches_the_client_and_the_record(gw, channel):
    with pytest.raises(grpc.RpcError) as err:
        channel.unary_unary(f"/{SERVICE}/Fail")(b"x", timeout=TIMEOUT)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert err.value.details() == "no such thing"
    rid = request_id(err.value)
    assert gw.records([rid])[rid]["grpc_status"] == "5"


@pytest.mark.parametrize(
    ("path", "code", "http_status"),
    [
        ("/keyed.Echo/Unary", grpc.StatusCode.UNAUTHENTICATED, 401),
        ("/down.Echo/Unary", grpc.StatusCode.UNAVAILABLE, 502),
    ],
)
def test_gateway_refusals_are_grpc_status_codes(gw, channel, path, code, http_status):
    with pytest.raises(grpc.RpcError) as err:
        channel.unary_unary(path)(b"x", timeout=TIMEOUT)
    assert err.value.code() == code, err.value
    assert err.value.details()
    rid = request_id(err.value)
    record = gw.records([rid])[rid]
    assert record["status"] == http_status
    assert record["grpc_status"] == str(code.value[0])


def test_rate_limit_is_resource_exhausted(channel):
    method = channel.unary_unary("/limited.Echo/Unary")
    with pytest.raises(grpc.RpcError) as first:
        method(b"x", timeout=TIMEOUT)
    # The first call is let through: the server has no such method.
    assert first.value.code() == grpc.StatusCode.UNIMPLEMENTED
    with pytest.raises(grpc.RpcError) as second:
        method(b"x", timeout=TIMEOUT)
    assert second.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    metadata = dict(second.value.initial_metadata() or ()) | dict(
        second.value.trailing_metadata() or ()
    )
    assert "retry-after" in metadata


def test_a_consumer_key_lets_the_call_through(channel):
    method = channel.unary_unary("/keyed.Echo/Unary")
    with pytest.raises(grpc.RpcError) as err:
        method(b"x", timeout=TIMEOUT, metadata=(("apikey", "alice-key"),))
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED  # the server's answer
