"""Attacks on WebSocket proxying (core-rs/src/upgrade/).

- Cross-site WebSocket hijacking: the gateway does not decide about Origin; the upstream
  gets it unchanged to check, and the route's ip rules still refuse the handshake.
- An Upgrade to another protocol (h2c) on a WebSocket route is not forwarded.
- Request smuggling through Upgrade on a route without `websocket`: the handshake reaches
  the upstream as a plain request, and an upstream that answers 101 anyway gets the client
  a 502, so no raw stream is opened either way.
- Bad config: zero limits and an HTTP/2 upstream are config errors naming the field.
"""

from __future__ import annotations

import base64
import os
import socket
import uuid

import pytest
from support.gateway import Gateway, running
from support.net import wait_until
from support.ws_upstream import SwitchingUpstream, echo_server
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect


@pytest.fixture(scope="module")
def switching():
    upstream = SwitchingUpstream()
    yield upstream
    upstream.close()


@pytest.fixture(scope="module")
def echo():
    with echo_server() as server:
        yield server


@pytest.fixture(scope="module")
def gw(tmp_path_factory, echo, switching):
    config = {
        "workers": 1,
        "upstreams": [
            {"name": "echo", "targets": [echo.addr]},
            {"name": "switching", "targets": [switching.addr]},
        ],
        "routes": [
            {"name": "ws", "paths": ["/ws/*"], "upstream": "echo", "websocket": True},
            {
                "name": "denied",
                "paths": ["/denied/*"],
                "upstream": "echo",
                "websocket": True,
                "plugins": {"ip-restriction": {"deny": ["127.0.0.1"]}},
            },
            {"name": "sw-ws", "paths": ["/sw-ws/*"], "upstream": "switching", "websocket": True},
            {"name": "sw-plain", "paths": ["/sw-plain/*"], "upstream": "switching"},
        ],
    }
    gateway = Gateway(tmp_path_factory.mktemp("sec-ws"), config)
    with running(gateway):
        yield gateway


def raw_request(port: int, head: str, then: bytes = b"") -> bytes:
    """Send a request head (and bytes after it); return all the gateway answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode() + then)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def handshake_head(path: str, upgrade: str = "websocket") -> str:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n"
        f"Upgrade: {upgrade}\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"X-Request-Id: {uuid.uuid4().hex}\r\n\r\n"
    )


def upstream_saw(switching: SwitchingUpstream, before: int) -> bytes:
    """What the upstream received on the connection the gateway opened (recorded when the
    gateway closes it)."""
    wait_until(lambda: len(switching.received) > before, 30, what="the upstream connection")
    return b"".join(switching.received[before:])


def test_origin_reaches_the_upstream_unchanged(gw, echo):
    rid = uuid.uuid4().hex
    headers = {"X-Request-Id": rid}
    with connect(
        f"ws://127.0.0.1:{gw.port}/ws/x", origin="https://evil.test", additional_headers=headers
    ) as ws:
        ws.send("hi")
        assert ws.recv() == "hi"
    assert echo.handshakes[rid]["origin"] == "https://evil.test"


def test_ip_rules_refuse_the_handshake(gw, echo):
    rid = uuid.uuid4().hex
    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://127.0.0.1:{gw.port}/denied/x", additional_headers={"X-Request-Id": rid})
    assert refused.value.response.status_code == 403
    assert rid not in echo.handshakes


def test_an_upgrade_to_another_protocol_is_not_forwarded(gw, switching):
    before = len(switching.received)
    answer = raw_request(gw.port, handshake_head("/sw-ws/x", upgrade="h2c"), b"RAW-AFTER")
    # The upstream switched anyway; the gateway did not pass that on.
    assert answer.startswith(b"HTTP/1.1 502"), answer[:200]
    seen = upstream_saw(switching, before).lower()
    assert b"upgrade:" not in seen and b"h2c" not in seen
    assert b"raw-after" not in seen


def test_upgrade_smuggling_on_a_route_without_websocket(gw, switching):
    before = len(switching.received)
    frame = bytes([0x81, 0x85, 0, 0, 0, 0]) + b"HELLO"
    smuggled = b"GET /internal HTTP/1.1\r\nHost: x\r\n\r\n"
    answer = raw_request(gw.port, handshake_head("/sw-plain/x"), frame + smuggled)
    assert answer.startswith(b"HTTP/1.1 502"), answer[:200]
    seen = upstream_saw(switching, before)
    # Without Upgrade and Connection (Sec-WebSocket-* are end-to-end and stay) the upstream
    # has no handshake to accept.
    assert b"upgrade" not in seen.lower()
    # What followed the handshake never reached the upstream as a raw stream.
    assert b"HELLO" not in seen and b"/internal" not in seen
    assert seen.count(b"HTTP/1.1\r\n") == 1


@pytest.mark.parametrize(
    ("websocket", "protocol", "field"),
    [
        ({"idle_timeout": 0}, "http1", "routes[0].websocket.idle_timeout"),
        ({"max_frame_size": 0}, "http1", "routes[0].websocket.max_frame_size"),
        (True, "h2c", "routes[0].websocket"),
    ],
)
def test_bad_websocket_config_names_the_field(tmp_path, websocket, protocol, field):
    config = {
        "listen": "127.0.0.1:0",
        "upstreams": [{"name": "u", "targets": ["127.0.0.1:9"], "protocol": protocol}],
        "routes": [{"name": "r", "paths": ["/r"], "upstream": "u", "websocket": websocket}],
    }
    gw = Gateway(tmp_path, config)
    gw.write_config(config)
    res = gw.cli("check")
    assert res.returncode != 0
    assert field in res.stdout + res.stderr, res.stdout + res.stderr
