"""Attacks on WebSockets over HTTP/2 (RFC 8441 extended CONNECT, upgrade/extended_connect.rs).

- Malformed extended CONNECTs (`:protocol` on a GET, no `:path`, no `:scheme`) are reset by
  the codec with PROTOCOL_ERROR and the connection goes on serving others.
- A plain CONNECT (a TCP tunnel to any host) and extended CONNECT for another protocol get
  the JSON 400; nothing reaches an upstream.
- A handshake without sec-websocket-version 13 gets the JSON 400.
- An upstream that answers 101 without the Sec-WebSocket-Accept for the gateway's key gets
  the client a 502: no tunnel to something that is not a WebSocket server.
- A frame over the route's limit closes that socket with 1009; another socket on the same
  connection goes on.
- Many extended CONNECTs on one connection stop at `max_concurrent_streams`
  (REFUSED_STREAM); the upstream holds no more sockets than that.
- A client that resets its stream mid-socket is recorded, and the upstream is freed.
"""

from __future__ import annotations

import json
import uuid

import pytest
from hyperframe.frame import HeadersFrame, RstStreamFrame
from support.gateway import Gateway, running
from support.h2_websocket import H2Client
from support.h2wire import H2Wire
from support.net import wait_until
from support.ws_upstream import SwitchingUpstream, echo_server
from wsproto.frame_protocol import Opcode

PROTOCOL_ERROR = 1
REFUSED_STREAM = 7
MAX_STREAMS = 4


@pytest.fixture(scope="module")
def echo():
    with echo_server() as server:
        yield server


@pytest.fixture(scope="module")
def switching():
    upstream = SwitchingUpstream()
    yield upstream
    upstream.close()


@pytest.fixture(scope="module")
def gw(tmp_path_factory, echo, switching):
    config = {
        "workers": 1,
        "http2": {"h2c": True, "max_concurrent_streams": MAX_STREAMS},
        "upstreams": [
            {"name": "echo", "targets": [echo.addr]},
            {"name": "switching", "targets": [switching.addr]},
        ],
        "routes": [
            {"name": "ws", "paths": ["/ws/*"], "upstream": "echo", "websocket": True},
            {
                "name": "small",
                "paths": ["/small/*"],
                "upstream": "echo",
                "websocket": {"max_frame_size": "1k"},
            },
            {"name": "sw-ws", "paths": ["/sw-ws/*"], "upstream": "switching", "websocket": True},
        ],
    }
    gateway = Gateway(tmp_path_factory.mktemp("sec-ws-h2"), config)
    with running(gateway):
        yield gateway


def new_id() -> str:
    return uuid.uuid4().hex


def extended_connect(wire: H2Wire, stream_id: int, headers: list[tuple[str, str]]) -> None:
    block = wire.encoder.encode(headers, huffman=False)
    wire.send(HeadersFrame(stream_id, block, flags=["END_HEADERS"]).serialize())


def ws_head(port: int, path: str = "/ws/x", **drop: bool) -> list[tuple[str, str]]:
    head = [
        (":method", "CONNECT"),
        (":protocol", "websocket"),
        (":scheme", "http"),
        (":path", path),
        (":authority", f"127.0.0.1:{port}"),
        ("sec-websocket-version", "13"),
    ]
    return [(k, v) for k, v in head if not drop.get(k.strip(":"))]


@pytest.mark.parametrize(
    "head",
    [
        pytest.param(lambda port: [(":method", "GET"), *ws_head(port)[1:]], id="protocol-on-get"),
        pytest.param(lambda port: ws_head(port, path=True), id="no-path"),
        pytest.param(lambda port: ws_head(port, scheme=True), id="no-scheme"),
    ],
)
def test_malformed_extended_connect_is_reset_and_the_connection_lives(gw, echo, head):
    opened = echo.open
    with H2Wire(gw.port) as wire:
        extended_connect(wire, 1, head(gw.port))
        reset = wire.read_until(lambda f: isinstance(f, RstStreamFrame))
        assert reset is not None and (reset.stream_id, reset.error_code) == (1, PROTOCOL_ERROR)
        wire.send(wire.headers(3, "/nowhere"))
        wire.read_until(lambda f: isinstance(f, HeadersFrame) and f.stream_id == 3)
        assert wire.seen.statuses()[3] == "404"
    assert echo.open == opened


@pytest.mark.parametrize(
    ("pseudo", "message"),
    [
        ({"protocol": "connect-udp"}, b"only offered for :protocol websocket"),
        ({"protocol": "h2c"}, b"only offered for :protocol websocket"),
    ],
)
def test_other_protocols_get_a_json_400(gw, echo, pseudo, message):
    rid = new_id()
    with H2Client(gw.port) as client:
        refused = client.open("/ws/x", {"x-request-id": rid}, **pseudo)
        assert refused.status == 400
        error = json.loads(refused.stream.data)["error"]
        assert error["kind"] == "bad_request" and message.decode() in error["message"]
    assert rid not in echo.handshakes


def test_plain_connect_is_refused(gw, echo):
    with H2Client(gw.port) as client:
        head = [(":method", "CONNECT"), (":authority", "169.254.169.254:80")]
        stream = client.streams[client.request(head, end_stream=False)]
        client.pump_until(lambda: stream.ended or stream.reset is not None)
        assert stream.status == 400
        assert b"CONNECT tunnels are not offered" in stream.data


def test_a_handshake_without_version_13_is_refused(gw, echo):
    rid = new_id()
    with H2Wire(gw.port) as wire:
        head = [(k, "8" if k == "sec-websocket-version" else v) for k, v in ws_head(gw.port)]
        extended_connect(wire, 1, [*head, ("x-request-id", rid)])
        wire.read_until(lambda f: isinstance(f, HeadersFrame) and f.stream_id == 1)
        assert wire.seen.statuses()[1] == "400"
    assert rid not in echo.handshakes


def test_an_upstream_101_without_the_right_accept_is_a_502(gw, switching):
    rid = new_id()
    with H2Client(gw.port) as client:
        refused = client.open("/sw-ws/x", {"x-request-id": rid})
        assert refused.status == 502
    rec = gw.records([rid])[rid]
    assert rec["status"] == 502

    # The upstream got the handshake (with the gateway's key) and not one byte more.
    def sent() -> bytes | None:
        return next((r for r in switching.received if rid.encode() in r), None)

    wait_until(lambda: sent() is not None, 30, what="the upstream to see the connection end")
    sent = sent()
    assert sent.lower().count(b"sec-websocket-key:") == 1
    assert sent.endswith(b"\r\n\r\n")


def test_an_oversized_frame_closes_only_its_socket(gw):
    rid = new_id()
    with H2Client(gw.port) as client:
        bystander = client.open("/small/ok")
        ws = client.open("/small/big", {"x-request-id": rid})
        assert (bystander.status, ws.status) == (200, 200)
        # A header announcing 64 KiB: refused on the length alone, before the payload.
        ws.send_bytes(bytes([0x82, 0xFE, 0xFF, 0xFF, 1, 2, 3, 4]))
        closed = ws.recv()
        assert (closed.opcode, closed.code) == (Opcode.CLOSE, 1009)
        ws.wait_ended()
        bystander.send("still here")
        assert bystander.recv().payload == "still here"
    rec = gw.records([rid])[rid]
    assert (rec["ws_close_code"], rec["error_kind"]) == (1009, "ws_frame_too_large")
    assert rec["ws_frames_in"] == 0


def test_extended_connects_stop_at_the_stream_limit(gw, echo):
    wait_until(lambda: echo.open == 0, 30, what="no sockets left open by other tests")
    with H2Wire(gw.port) as wire:
        assert wire.server_settings.get(0x8) == 1  # SETTINGS_ENABLE_CONNECT_PROTOCOL
        ids = [1 + 2 * i for i in range(MAX_STREAMS * 3)]
        for sid in ids:
            extended_connect(wire, sid, ws_head(gw.port, f"/ws/flood/{sid}"))

        def settled() -> bool:
            answered = set(wire.seen.statuses()) | set(wire.seen.resets())
            return answered >= set(ids)

        wire.read_until(lambda _: settled())
        statuses, resets = wire.seen.statuses(), wire.seen.resets()
        assert sorted(sid for sid, s in statuses.items() if s == "200") == ids[:MAX_STREAMS]
        assert {resets[sid] for sid in ids[MAX_STREAMS:]} == {REFUSED_STREAM}
        # The echo server counts a socket once its handler runs, just after its 101.
        wait_until(lambda: echo.open == MAX_STREAMS, 30, what="the upstream sockets to open")
    # The connection is gone: so are its sockets, at the upstream too.
    wait_until(lambda: echo.open == 0, 30, what="the upstream sockets to close")


def test_a_client_that_resets_its_stream_is_recorded(gw, echo):
    rid = new_id()
    with H2Client(gw.port) as client:
        ws = client.open("/ws/gone", {"x-request-id": rid})
        ws.send("hi")
        assert ws.recv().payload == "hi"
        ws.reset()
        rec = gw.records([rid])[rid]
        assert (rec["ws_close_code"], rec["error_kind"]) == (1006, "client_closed")
        # The connection itself is fine.
        assert client.get("/nowhere").status == 404
    wait_until(lambda: echo.open == 0, 30, what="the upstream socket to close")
