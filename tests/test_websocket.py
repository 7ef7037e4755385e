"""WebSocket proxying (core-rs/src/upgrade/): echo through the gateway with the real
`websockets` client and server, auth at the handshake, a reload while a socket is open, a
client that disappears, a frame over the limit, and the one call record per socket."""

from __future__ import annotations

import base64
import os
import socket
import uuid

import pytest
from support.gateway import Gateway, running
from support.net import wait_until
from support.ws_upstream import echo_server
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus
from websockets.sync.client import connect

SMALL_FRAMES = {"max_frame_size": "1k"}


def config(addr: str, **ws_route: object) -> dict:
    return {
        "workers": 1,
        "upstreams": [{"name": "ws", "targets": [addr]}],
        "consumers": [{"name": "alice", "keys": ["alice-key"]}],
        "routes": [
            {"name": "ws", "paths": ["/ws/*"], "upstream": "ws", "websocket": True},
            {
                "name": "small",
                "paths": ["/small/*"],
                "upstream": "ws",
                "websocket": ws_route.get("small", SMALL_FRAMES),
            },
            {
                "name": "idle",
                "paths": ["/idle/*"],
                "upstream": "ws",
                "websocket": {"idle_timeout": "300ms"},
            },
            {
                "name": "keyed",
                "paths": ["/keyed/*"],
                "upstream": "ws",
                "websocket": True,
                "plugins": {"key-auth": {}},
            },
            {"name": "plain", "paths": ["/plain/*"], "upstream": "ws"},
        ],
    }


@pytest.fixture(scope="module")
def echo():
    with echo_server() as server:
        yield server


@pytest.fixture(scope="module")
def ws_gw(tmp_path_factory, echo):
    gw = Gateway(tmp_path_factory.mktemp("ws-gw"), config(echo.addr))
    with running(gw):
        yield gw


def ws_url(gw: Gateway, path: str) -> str:
    return f"ws://127.0.0.1:{gw.port}{path}"


def new_id() -> str:
    return uuid.uuid4().hex


def test_echo_text_and_binary_through_the_gateway(ws_gw, echo):
    rid = new_id()
    with connect(ws_url(ws_gw, "/ws/echo"), additional_headers={"X-Request-Id": rid}) as ws:
        ws.send("hello")
        assert ws.recv() == "hello"
        big = os.urandom(300_000)
        ws.send(big)
        assert ws.recv() == big
    seen = echo.handshakes[rid]
    assert seen[":path"] == "/ws/echo"
    assert seen["upgrade"].lower() == "websocket"
    assert seen["x-forwarded-for"] == "127.0.0.1"


def test_the_call_record_is_written_once_at_close(ws_gw):
    rid = new_id()
    # Uncompressed, so that the byte counts can be checked against the messages' sizes.
    headers = {"X-Request-Id": rid}
    with connect(ws_url(ws_gw, "/ws/rec"), additional_headers=headers, compression=None) as ws:
        for text in ("a" * 10, "b" * 200, "c" * 70_000):
            ws.send(text)
            assert ws.recv() == text
        ws.close(1000)
    rec = ws_gw.records([rid])[rid]
    assert rec["status"] == 101
    assert rec["route"] == "ws"
    assert rec["ws_close_code"] == 1000
    # Three messages and the Close each way. bytes_in also holds the request head and the
    # client's mask keys.
    assert rec["ws_frames_in"] == 4 and rec["ws_frames_out"] == 4
    assert rec["bytes_in"] > rec["bytes_out"] >= 70_210
    assert rec["error_kind"] == ""
    rows = ws_gw.logs_query(f"SELECT count() AS n FROM pygate.requests WHERE request_id = '{rid}'")
    assert rows[0]["n"] == 1


def test_a_close_code_from_the_upstream_is_recorded(ws_gw):
    rid = new_id()
    with connect(ws_url(ws_gw, "/ws/c"), additional_headers={"X-Request-Id": rid}) as ws:
        ws.send("close:4000")
        with pytest.raises(ConnectionClosed):
            ws.recv()
        assert ws.close_code == 4000
    assert ws_gw.records([rid])[rid]["ws_close_code"] == 4000


def test_auth_is_refused_at_the_handshake(ws_gw, echo):
    rid = new_id()
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url(ws_gw, "/keyed/x"), additional_headers={"X-Request-Id": rid})
    assert refused.value.response.status_code == 401
    assert rid not in echo.handshakes
    rid = new_id()
    headers = {"X-Request-Id": rid, "apikey": "alice-key"}
    with connect(ws_url(ws_gw, "/keyed/x"), additional_headers=headers) as ws:
        ws.send("hi")
        assert ws.recv() == "hi"
    assert echo.handshakes[rid]["x-consumer-username"] == "alice"


def test_a_route_without_websocket_does_not_upgrade(ws_gw, echo):
    rid = new_id()
    with pytest.raises(InvalidStatus):
        connect(ws_url(ws_gw, "/plain/x"), additional_headers={"X-Request-Id": rid})
    # The echo server saw no WebSocket handshake: its Upgrade headers were dropped.
    assert rid not in echo.handshakes


def test_a_frame_over_the_limit_closes_with_1009_and_spares_others(ws_gw):
    rid = new_id()
    with connect(ws_url(ws_gw, "/small/ok"), compression=None) as bystander:
        with connect(
            ws_url(ws_gw, "/small/big"),
            additional_headers={"X-Request-Id": rid},
            max_size=None,
            compression=None,
        ) as ws:
            ws.send("x" * 1000)
            assert ws.recv() == "x" * 1000
            ws.send("y" * 2000)
            with pytest.raises(ConnectionClosedError):
                ws.recv()
            assert ws.close_code == 1009
        bystander.send("still here")
        assert bystander.recv() == "still here"
    rec = ws_gw.records([rid])[rid]
    assert (rec["ws_close_code"], rec["error_kind"]) == (1009, "ws_frame_too_large")


def test_an_idle_socket_is_closed_with_1001(ws_gw):
    rid = new_id()
    with connect(ws_url(ws_gw, "/idle/x"), additional_headers={"X-Request-Id": rid}) as ws:
        with pytest.raises(ConnectionClosed):
            ws.recv()
        assert ws.close_code == 1001
    rec = ws_gw.records([rid])[rid]
    assert (rec["ws_close_code"], rec["error_kind"]) == (1001, "ws_idle_timeout")


def raw_handshake(port: int, path: str, rid: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n"
        f"Upgrade: websocket\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"X-Request-Id: {rid}\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def test_a_client_that_disappears_is_recorded_and_the_upstream_freed(ws_gw, echo):
    rid = new_id()
    sock = raw_handshake(ws_gw.port, "/ws/gone", rid)
    # A masked text frame "hi", then the client is gone without a Close.
    sock.sendall(bytes([0x81, 0x82, 1, 2, 3, 4, ord("h") ^ 1, ord("i") ^ 2]))
    assert sock.recv(16) == b"\x81\x02hi"
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()
    rec = ws_gw.records([rid])[rid]
    assert (rec["ws_close_code"], rec["error_kind"]) == (1006, "client_closed")
    wait_until(lambda: echo.open == 0, 30, what="the echo server to see the socket closed")


def test_a_reload_keeps_open_sockets_on_their_config(tmp_path, echo):
    gw = Gateway(tmp_path / "gw", config(echo.addr))
    with running(gw):
        rid = new_id()
        with connect(
            ws_url(gw, "/small/x"),
            additional_headers={"X-Request-Id": rid},
            max_size=None,
            compression=None,
        ) as ws:
            ws.send("a" * 1000)
            assert ws.recv() == "a" * 1000
            # The new config raises the route's frame limit and drops the plain route.
            changed = config(echo.addr, small={"max_frame_size": "1m"})
            changed["routes"] = [r for r in changed["routes"] if r["name"] != "plain"]
            gw.write_config(changed)
            assert gw.reload() == "reloaded"
            with connect(ws_url(gw, "/small/new"), max_size=None, compression=None) as fresh:
                fresh.send("b" * 2000)
                assert fresh.recv() == "b" * 2000
            # The open socket still echoes, and still has the limit it started with.
            ws.send("c" * 500)
            assert ws.recv() == "c" * 500
            ws.send("d" * 2000)
            with pytest.raises(ConnectionClosedError):
                ws.recv()
            assert ws.close_code == 1009
        assert gw.records([rid])[rid]["ws_close_code"] == 1009


def test_shutdown_cuts_open_sockets_and_still_records_them(tmp_path, echo):
    gw = Gateway(tmp_path / "gw", config(echo.addr))
    rid = new_id()
    with (
        running(gw),
        connect(ws_url(gw, "/ws/x"), additional_headers={"X-Request-Id": rid}) as ws,
    ):
        ws.send("hi")
        assert ws.recv() == "hi"
        assert gw.stop() == 0
        with pytest.raises(ConnectionClosed):
            ws.recv()
    rec = gw.records([rid])[rid]
    assert (rec["status"], rec["error_kind"]) == (101, "gateway_shutdown")
