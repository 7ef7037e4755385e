"""WebSockets over HTTP/2 (RFC 8441 extended CONNECT, core-rs/src/upgrade/extended_connect.rs):
a real gateway over TLS (ALPN h2) and over h2c, the real `websockets` echo server as the
upstream (reached by an HTTP/1.1 Upgrade the gateway makes), and a client built from the `h2`
package and wsproto's frame layer (support/h2_websocket.py).

Covered: the SETTINGS advertise ENABLE_CONNECT_PROTOCOL (and not when turned off), echo of
text and binary, the one call record at close (protocol, status 200, close code, bytes and
frames each way), auth and a rate limit refused on the stream with the JSON error, the idle
timeout, sockets and plain requests sharing one connection, the keep-alive clock not cutting
a connection that only carries WebSocket frames, and a reload keeping an open socket's
config.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
from support.gateway import Gateway, running
from support.h2_websocket import H2Client
from support.net import free_port, wait_until
from support.tls_certs import Ca, client_context
from support.ws_upstream import echo_server
from wsproto.frame_protocol import Opcode


def config(addr: str, tls_port: int, site, **over: object) -> dict:
    return {
        "workers": 1,
        "http2": {"h2c": True, **over.get("http2", {})},
        "limits": {"keepalive_timeout": over.get("keepalive_timeout", "75s")},
        "listeners": [
            {
                "listen": f"127.0.0.1:{tls_port}",
                "tls": {"certificates": [{"cert": str(site.cert), "key": str(site.key)}]},
            }
        ],
        "upstreams": [{"name": "ws", "targets": [addr]}],
        "consumers": [{"name": "alice", "keys": ["alice-key"]}],
        "routes": [
            {"name": "ws", "paths": ["/ws/*"], "upstream": "ws", "websocket": True},
            {
                "name": "small",
                "paths": ["/small/*"],
                "upstream": "ws",
                "websocket": over.get("small", {"max_frame_size": "1k"}),
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
            *(
                {
                    "name": f"limited-{kind}",
                    "paths": [f"/limited-{kind}/*"],
                    "upstream": "ws",
                    "websocket": True,
                    "plugins": {"rate-limit": {"rate": 2, "per": "1h", "burst": 2, "by": "route"}},
                }
                for kind in ("tls", "h2c")
            ),
            {"name": "plain", "paths": ["/plain/*"], "upstream": "ws"},
        ],
    }


@pytest.fixture(scope="module")
def echo():
    with echo_server() as server:
        yield server


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    ca = Ca(tmp_path_factory.mktemp("pki-ws-h2"))
    return ca, ca.issue("site", "localhost", ["localhost"])


@pytest.fixture(scope="module")
def gw(tmp_path_factory, echo, pki):
    port = free_port()
    gateway = Gateway(tmp_path_factory.mktemp("ws-h2-gw"), config(echo.addr, port, pki[1]))
    with running(gateway):
        gateway.tls_port = port
        yield gateway


@pytest.fixture(params=["tls", "h2c"])
def connect(request, gw, pki):
    """Opens a client connection over TLS with ALPN h2, or cleartext by prior knowledge."""
    clients: list[H2Client] = []

    def make() -> H2Client:
        if request.param == "tls":
            client = H2Client(gw.tls_port, tls=client_context(pki[0].cert, alpn=["h2"]))
        else:
            client = H2Client(gw.port)
        clients.append(client)
        return client

    make.kind = request.param
    yield make
    for c in clients:
        c.close()


def new_id() -> str:
    return uuid.uuid4().hex


def test_settings_advertise_enable_connect_protocol(connect):
    assert connect().enables_connect_protocol


def test_echo_and_the_call_record_at_close(connect, gw, echo):
    rid = new_id()
    client = connect()
    ws = client.open("/ws/echo?room=1", {"x-request-id": rid})
    assert ws.status == 200, ws.stream
    # RFC 8441: no Sec-WebSocket-Accept on HTTP/2 (the gateway checked the upstream's).
    assert "sec-websocket-accept" not in ws.stream.headers
    assert ws.stream.headers["x-request-id"] == rid
    ws.send("hello")
    assert ws.recv().payload == "hello"
    blob = bytes(range(256)) * 300
    ws.send(blob)
    got = ws.recv()
    assert (got.opcode, got.payload) == (Opcode.BINARY, blob)
    ws.send("x" * 70_000)
    assert ws.recv().payload == "x" * 70_000
    ws.close(1000)
    closed = ws.recv()
    assert closed.opcode is Opcode.CLOSE and closed.code == 1000
    ws.end_stream()
    ws.wait_ended()
    # The upstream got an HTTP/1.1 Upgrade with the gateway's own key.
    seen = echo.handshakes[rid]
    assert seen[":path"] == "/ws/echo?room=1"
    assert seen["upgrade"].lower() == "websocket"
    assert len(seen["sec-websocket-key"]) == 24
    assert seen["x-forwarded-for"] == "127.0.0.1"

    rec = gw.records([rid])[rid]
    assert (rec["status"], rec["protocol"], rec["route"]) == (200, "HTTP/2", "ws")
    assert rec["method"] == "CONNECT"
    assert (rec["ws_close_code"], rec["error_kind"]) == (1000, "")
    assert rec["ws_frames_in"] == 4 and rec["ws_frames_out"] == 4
    payload = 5 + len(blob) + 70_000
    # Client frames carry 4 mask bytes each; bytes_in also holds the request head.
    assert rec["bytes_out"] >= payload and rec["bytes_in"] > rec["bytes_out"]
    # The duration is the whole socket's, from the handshake to the close.
    assert rec["latency_ms"] > rec["upstream_latency_ms"] >= 0
    if connect.kind == "tls":
        assert rec["tls_alpn"] == "h2"
    rows = gw.logs_query(f"SELECT count() AS n FROM pygate.requests WHERE request_id = '{rid}'")
    assert rows[0]["n"] == 1


def test_a_close_code_from_the_upstream_is_recorded(connect, gw):
    rid = new_id()
    ws = connect().open("/ws/c", {"x-request-id": rid})
    ws.send("close:4000")
    closed = ws.recv()
    assert (closed.opcode, closed.code) == (Opcode.CLOSE, 4000)
    ws.close(4000)
    ws.end_stream()
    ws.wait_ended()
    assert gw.records([rid])[rid]["ws_close_code"] == 4000


def test_auth_is_refused_on_the_stream(connect, gw, echo):
    client = connect()
    rid = new_id()
    refused = client.open("/keyed/x", {"x-request-id": rid})
    assert refused.status == 401
    error = json.loads(refused.stream.data)["error"]
    assert (error["kind"], error["request_id"]) == ("unauthorized", rid)
    assert refused.stream.headers["content-type"] == "application/json"
    assert rid not in echo.handshakes
    # The same connection goes on: a key opens the socket.
    rid = new_id()
    ws = client.open("/keyed/x", {"x-request-id": rid, "apikey": "alice-key"})
    assert ws.status == 200
    ws.send("hi")
    assert ws.recv().payload == "hi"
    assert echo.handshakes[rid]["x-consumer-username"] == "alice"
    ws.close(1000)
    ws.recv()
    ws.end_stream()
    assert gw.records([rid])[rid]["consumer"] == "alice"


def test_a_rate_limit_is_refused_on_the_stream(connect, echo):
    client = connect()
    statuses = []
    for _ in range(3):
        ws = client.open(f"/limited-{connect.kind}/x")
        statuses.append(ws.status)
        if ws.status == 200:
            ws.close(1000)
            ws.recv()
            ws.end_stream()
    assert statuses == [200, 200, 429]
    assert json.loads(ws.stream.data)["error"]["kind"] == "rate_limited"
    assert int(ws.stream.headers["retry-after"]) > 0


def test_an_idle_socket_is_closed_with_1001(connect, gw):
    rid = new_id()
    ws = connect().open("/idle/x", {"x-request-id": rid})
    assert ws.status == 200
    closed = ws.recv()
    assert closed.opcode is Opcode.CLOSE and closed.code == 1001
    ws.wait_ended()
    rec = gw.records([rid])[rid]
    assert (rec["ws_close_code"], rec["error_kind"]) == (1001, "ws_idle_timeout")


def test_a_route_without_websocket_refuses_the_connect(connect, echo):
    rid = new_id()
    refused = connect().open("/plain/x", {"x-request-id": rid})
    assert refused.status == 400
    assert b"does not take WebSockets" in refused.stream.data
    assert rid not in echo.handshakes


def test_sockets_and_requests_share_one_connection(connect, echo):
    client = connect()
    sockets = [client.open(f"/ws/many/{i}") for i in range(5)]
    assert [s.status for s in sockets] == [200] * 5
    for i, ws in enumerate(sockets):
        ws.send(f"m{i}")
    for i, ws in enumerate(sockets):
        assert ws.recv().payload == f"m{i}"
    # A plain request on the same connection meanwhile (no route: the JSON 404).
    assert client.get("/nowhere").status == 404
    for ws in sockets:
        ws.close(1000)
        ws.recv()
        ws.end_stream()
        ws.wait_ended()
    wait_until(lambda: echo.open == 0, 30, what="the upstream sockets to close")


def test_keepalive_does_not_cut_a_connection_busy_with_a_socket(tmp_path, echo, pki):
    port = free_port()
    gateway = Gateway(tmp_path / "gw", config(echo.addr, port, pki[1], keepalive_timeout="500ms"))
    with running(gateway):
        client = H2Client(gateway.port)
        ws = client.open("/ws/long")
        assert ws.status == 200
        # Well past two keep-alive periods (GOAWAY, then the drop), messages still flow.
        for i in range(8):
            time.sleep(0.25)
            ws.send(f"tick{i}")
            assert ws.recv().payload == f"tick{i}"
        assert client.terminated is None
        ws.close(1000)
        ws.recv()
        ws.end_stream()
        ws.wait_ended()
        # With the socket gone the connection is idle again and is closed.
        client.pump_until(lambda: client.terminated is not None)
        client.close()


def test_a_reload_keeps_open_sockets_on_their_config(tmp_path, echo, pki):
    port = free_port()
    gateway = Gateway(tmp_path / "gw", config(echo.addr, port, pki[1]))
    with running(gateway):
        client = H2Client(gateway.port)
        rid = new_id()
        ws = client.open("/small/x", {"x-request-id": rid})
        ws.send("a" * 1000)
        assert ws.recv().payload == "a" * 1000
        gateway.write_config(config(echo.addr, port, pki[1], small={"max_frame_size": "1m"}))
        assert gateway.reload() == "reloaded"
        fresh = client.open("/small/new")
        fresh.send("b" * 2000)
        assert fresh.recv().payload == "b" * 2000
        # The open socket still has the limit it started with.
        ws.send("c" * 500)
        assert ws.recv().payload == "c" * 500
        ws.send("d" * 2000)
        closed = ws.recv()
        assert closed.opcode is Opcode.CLOSE and closed.code == 1009
        assert gateway.records([rid])[rid]["ws_close_code"] == 1009
        client.close()


def test_extended_connect_can_be_turned_off(tmp_path, echo, pki):
    port = free_port()
    off = config(echo.addr, port, pki[1], http2={"extended_connect": False})
    gateway = Gateway(tmp_path / "gw", off)
    with running(gateway):
        client = H2Client(gateway.port)
        assert not client.enables_connect_protocol
        client.close()
