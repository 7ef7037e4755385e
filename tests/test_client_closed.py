"""Every request the core counts is a row, including calls whose client left early.

A client that closes before its whole answer is recorded as nginx records it: status 499,
`error_kind = 'client_closed'`, with what was known when it left (route, upstream, bytes
so far, time until then). A call the shutdown cuts says `gateway_shutdown`. Real gateway,
real upstream on loopback, clients on raw sockets (HTTP/1.1) and raw frames (HTTP/2).
"""

from __future__ import annotations

import asyncio
import random
import socket
import threading
import time
import uuid

import pytest
from hyperframe.frame import DataFrame, HeadersFrame, RstStreamFrame
from support.client import get
from support.configs import route, simple_config, upstream
from support.gateway import Gateway, running
from support.h2wire import H2Wire
from support.net import wait_until

H2_CANCEL = 0x8


def closed_config(upstreams, **top):
    return simple_config(
        upstreams,
        http2={"h2c": True},
        upstreams=[upstream("echo", [upstreams.addr("echo")], read_timeout="60s")],
        routes=[route("echo", ["/echo/*"], "echo")],
        **top,
    )


@pytest.fixture(scope="module")
def gw(upstreams, tmp_path_factory):
    with running(Gateway(tmp_path_factory.mktemp("gw-closed"), closed_config(upstreams))) as g:
        yield g


def new_id(what: str) -> str:
    return f"{what}-{uuid.uuid4().hex[:12]}"


def rows_of(gateway: Gateway, rid: str) -> list[dict]:
    return gateway.logs_query(f"SELECT * FROM pygate.requests WHERE request_id = '{rid}'")


def the_row(gateway: Gateway, rid: str) -> dict:
    """The call's one row: waits for it, then checks that no second one follows."""
    row = gateway.records([rid])[rid]
    time.sleep(0.6)  # three flush intervals: a double record would be in by now
    rows = rows_of(gateway, rid)
    assert len(rows) == 1, rows
    return row


def connect(gateway: Gateway) -> socket.socket:
    return socket.create_connection(("127.0.0.1", gateway.port), timeout=30)


def head(gateway: Gateway, method: str, target: str, rid: str, *extra: str) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{gateway.port}"]
    lines += [f"X-Request-Id: {rid}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_client_closing_mid_request_is_one_499_row(gw, upstreams):
    rid, gate = new_id("mid-req"), uuid.uuid4().hex
    sent = b"x" * 3000
    data = head(gw, "POST", f"/echo/up?mode=stream_in&gate={gate}", rid, "Content-Length: 100000")
    with connect(gw) as sock:
        sock.sendall(data + sent)
        # The upload is on its way upstream when the client gives up on it.
        wait_until(lambda: upstreams.progress(gate) >= len(sent), 30, what="upload upstream")
    row = the_row(gw, rid)
    assert (row["status"], row["error_kind"]) == (499, "client_closed")
    assert row["route"] == "echo" and row["upstream_addr"] == upstreams.addr("echo")
    assert row["bytes_in"] == len(data) + len(sent)
    assert row["bytes_out"] == 0 and row["grpc_status"] == ""


def test_client_closing_mid_response_is_a_499_row_with_the_bytes_sent(gw, upstreams):
    rid, gate = new_id("mid-resp"), uuid.uuid4().hex
    with connect(gw) as sock:
        sock.sendall(head(gw, "GET", f"/echo/sse?mode=sse&gate={gate}&n=50", rid))
        got = b""
        while b"data: first" not in got:
            chunk = sock.recv(65536)
            assert chunk, got
            got += chunk
    try:
        row = the_row(gw, rid)
    finally:
        upstreams.release(gate)
    assert (row["status"], row["error_kind"]) == (499, "client_closed")
    assert row["upstream_addr"] == upstreams.addr("echo")
    # The first event went out; the other 49 never did.
    assert 0 < row["bytes_out"] < 200, row["bytes_out"]


def test_client_closing_before_the_upstream_answers_is_a_499_row(gw, upstreams):
    rid, gate = new_id("before"), uuid.uuid4().hex
    started = time.monotonic()
    with connect(gw) as sock:
        sock.sendall(head(gw, "GET", f"/echo/slow?mode=slow&delay=20&gate={gate}", rid))
        wait_until(lambda: upstreams.inflight(gate) == 1, 30, what="upstream sleeping")
        time.sleep(0.3)
    row = the_row(gw, rid)
    assert (row["status"], row["error_kind"]) == (499, "client_closed")
    assert row["route"] == "echo" and row["upstream_addr"] == upstreams.addr("echo")
    assert row["bytes_out"] == 0
    # Recorded when the client left, not when the upstream would have answered.
    assert 300 <= row["latency_ms"] < (time.monotonic() - started) * 1000


def h2_request(wire: H2Wire, stream_id: int, path: str, rid: str, *extra) -> None:
    block = wire.block(path, extra=[("x-request-id", rid), *extra])
    wire.send(HeadersFrame(stream_id, block, flags=["END_HEADERS", "END_STREAM"]).serialize())


@pytest.mark.parametrize("grpc", [False, True], ids=["http", "grpc"])
def test_http2_stream_reset_before_the_answer_is_a_499_row(gw, upstreams, grpc):
    rid, gate = new_id("rst"), uuid.uuid4().hex
    extra = [("content-type", "application/grpc"), ("te", "trailers")] if grpc else []
    with H2Wire(gw.port) as wire:
        h2_request(wire, 1, f"/echo/rst?mode=slow&delay=20&gate={gate}", rid, *extra)
        wait_until(lambda: upstreams.inflight(gate) == 1, 30, what="upstream sleeping")
        wire.send(RstStreamFrame(1, error_code=H2_CANCEL).serialize())
        # The connection stays open: the reset alone ends the call.
        row = the_row(gw, rid)
        ok = new_id("after-rst")
        h2_request(wire, 3, "/echo/next", ok)
        done = wire.read_until(lambda f: f.stream_id == 3 and "END_STREAM" in f.flags)
        assert done is not None
    assert (row["status"], row["error_kind"]) == (499, "client_closed")
    assert row["protocol"] == "HTTP/2" and row["upstream_addr"] == upstreams.addr("echo")
    # No grpc-status reached the client, so none is recorded.
    assert row["grpc_status"] == ""
    assert the_row(gw, ok)["status"] == 200


def test_http2_stream_reset_mid_response_is_a_499_row(gw, upstreams):
    rid, gate = new_id("rst-body"), uuid.uuid4().hex
    with H2Wire(gw.port) as wire:
        h2_request(wire, 1, f"/echo/sse?mode=sse&gate={gate}&n=50", rid)
        first = wire.read_until(lambda f: isinstance(f, DataFrame) and f.stream_id == 1)
        assert first is not None and b"data: first" in first.data
        wire.send(RstStreamFrame(1, error_code=H2_CANCEL).serialize())
        try:
            row = the_row(gw, rid)
        finally:
            upstreams.release(gate)
    assert (row["status"], row["error_kind"]) == (499, "client_closed")
    assert row["bytes_out"] == len(first.data)


def test_a_normal_call_is_still_one_row_with_its_real_status(gw):
    ok, missing = new_id("ok"), new_id("404")
    assert get(gw.url("/echo/fine"), headers={"X-Request-Id": ok}).status == 200
    assert get(gw.url("/nowhere"), headers={"X-Request-Id": missing}).status == 404
    row = the_row(gw, ok)
    assert (row["status"], row["error_kind"]) == (200, "")
    assert row["bytes_out"] > 0
    assert (the_row(gw, missing)["status"], rows_of(gw, missing)[0]["error_kind"]) == (
        404,
        "no_route",
    )


def test_a_call_the_shutdown_cuts_is_recorded_as_gateway_shutdown(make_gateway, upstreams):
    gateway = make_gateway(closed_config(upstreams, shutdown_grace="1s"))
    rid, gate = new_id("cut"), uuid.uuid4().hex
    with connect(gateway) as sock:
        sock.sendall(head(gateway, "GET", f"/echo/slow?mode=slow&delay=20&gate={gate}", rid))
        wait_until(lambda: upstreams.inflight(gate) == 1, 30, what="upstream sleeping")
        gateway.stop()
    rows = rows_of(gateway, rid)  # the store, read with the gateway stopped
    assert [(r["status"], r["error_kind"]) for r in rows] == [(503, "gateway_shutdown")]
    assert rows[0]["upstream_addr"] == upstreams.addr("echo")


class Abandoning:
    """Many connections, each sending requests and, one time in three, leaving before the
    answer (or in the middle of it); runs on a thread until stopped."""

    def __init__(self, gateway: Gateway, clients: int = 24) -> None:
        self.port = gateway.port
        self.clients = clients
        self.sent = 0
        self.abandoned = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        await asyncio.gather(*(self._client(n) for n in range(self.clients)))

    async def _client(self, n: int) -> None:
        rng = random.Random(n)
        while not self._stop.is_set():
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            try:
                for _ in range(rng.randint(1, 5)):
                    leave = rng.random() < 0.33
                    delay = rng.choice(["0", "0.02", "0.2"])
                    target = f"/echo/load?mode=slow&delay={delay}" if leave else "/echo/load"
                    writer.write(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
                    await writer.drain()
                    self.sent += 1
                    if leave:
                        await asyncio.sleep(rng.uniform(0, 0.05))
                        self.abandoned += 1
                        break
                    status = await reader.readline()
                    assert status.startswith(b"HTTP/1.1 200"), status
                    length = 0
                    while (line := await reader.readline()) not in (b"\r\n", b""):
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":")[1])
                    await reader.readexactly(length)
            finally:
                writer.transport.abort()

    def __enter__(self) -> Abandoning:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(60)
        assert not self._thread.is_alive(), "load did not stop"


def test_rows_equal_requests_counted_after_reloads_under_abandoning_load(make_gateway, upstreams):
    gateway = make_gateway(closed_config(upstreams))
    with Abandoning(gateway) as load:
        wait_until(lambda: load.abandoned > 50, 60, what="load running")
        for _ in range(5):
            gateway.reload()
            time.sleep(0.3)

    # The abandoned handlers are dropped as their connections go; then the count settles.
    def settled() -> int | None:
        before = gateway.status()["requests_total"]
        time.sleep(0.5)
        return before if gateway.status()["requests_total"] == before else None

    counted = wait_until(settled, 30, what="the request count settled")
    # A request the client aborted before the core had read it is neither counted nor a row.
    assert 0 < counted <= load.sent

    def stored() -> int:
        return int(gateway.logs_query("SELECT count() AS n FROM pygate.requests")[0]["n"])

    wait_until(lambda: stored() >= counted, 60, what="every counted request in the store")
    time.sleep(0.6)
    assert stored() == counted
    closed = gateway.logs_query(
        "SELECT count() AS n FROM pygate.requests WHERE status = 499"
        " AND error_kind = 'client_closed'"
    )
    assert int(closed[0]["n"]) > 0
