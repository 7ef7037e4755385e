"""Attacks on the HTTP/2 listener (h2c by prior knowledge), after h2spec's main cases and the
known floods: bad preface, streams beyond max_concurrent_streams, rapid reset
(CVE-2023-44487), CONTINUATION floods (CVE-2024-27316 and kin), oversized header lists and
flow-control window overflow. Each ends with the gateway still serving other clients.

Frames are made by hand (tests/support/h2wire.py); the load beside an attack is h2load.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from h2.errors import ErrorCodes
from hyperframe.frame import DataFrame, GoAwayFrame, RstStreamFrame, WindowUpdateFrame
from support.client import raw_exchange
from support.configs import route, upstream
from support.gateway import Gateway
from support.h2wire import H2Wire, continuation, open_headers

MAX_STREAMS = 4
MAX_HEADER_LIST = 16 * 1024


@pytest.fixture(scope="module")
def gw(upstreams, tmp_path_factory):
    config = {
        "workers": 1,
        "limits": {"max_header_bytes": 8192},
        "http2": {
            "h2c": True,
            "max_concurrent_streams": MAX_STREAMS,
            "max_header_list_size": MAX_HEADER_LIST,
        },
        "upstreams": [upstream("echo", [upstreams.addr("echo")])],
        "routes": [route("echo", ["/echo/*"], "echo")],
    }
    gateway = Gateway(tmp_path_factory.mktemp("gw-sec-h2"), config)
    try:
        gateway.start()
        yield gateway
        gateway.stop()
    finally:
        gateway.kill()


def assert_serving(gw: Gateway) -> None:
    with httpx.Client(http1=False, http2=True, timeout=30) as client:
        resp = client.get(gw.url("/echo/still-here"))
    assert resp.status_code == 200 and resp.json()["path"] == "/echo/still-here"


def rss_kib(gw: Gateway) -> int:
    status = Path(f"/proc/{gw.proc.pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1])


def goaway_code(wire: H2Wire) -> int | None:
    frame = wire.read_until(lambda f: isinstance(f, GoAwayFrame))
    return frame.error_code if frame is not None else None


def test_preface_that_is_not_http2_gets_a_json_400(gw):
    resp = raw_exchange(gw.port, b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n")
    assert resp is not None and resp.status == 400
    assert json.loads(resp.body)["error"]["kind"] == "bad_request"
    assert_serving(gw)


def test_garbage_after_the_preface_is_a_protocol_error(gw):
    with H2Wire(gw.port) as wire:
        # A HEADERS frame on stream 0 is a connection error (RFC 9113 6.2); made by hand,
        # as hyperframe refuses to.
        wire.send(b"\x00\x00\x00\x01\x04\x00\x00\x00\x00")
        assert goaway_code(wire) == ErrorCodes.PROTOCOL_ERROR
    with H2Wire(gw.port) as wire:
        # A frame longer than SETTINGS_MAX_FRAME_SIZE (16 KiB): FRAME_SIZE_ERROR.
        wire.send(DataFrame(1, b"x" * 20_000).serialize())
        assert goaway_code(wire) in (ErrorCodes.FRAME_SIZE_ERROR, ErrorCodes.PROTOCOL_ERROR)
    assert_serving(gw)


def test_streams_beyond_the_limit_are_refused(gw):
    with H2Wire(gw.port) as wire:
        assert wire.server_settings.get(0x3) == MAX_STREAMS  # SETTINGS_MAX_CONCURRENT_STREAMS
        # Uploads that never finish hold their streams open.
        ids = [1 + 2 * i for i in range(MAX_STREAMS + 6)]
        opens = [wire.headers(i, "/echo/up", end_stream=False, method="POST") for i in ids]
        wire.send(b"".join(opens))
        over = set(ids[MAX_STREAMS:])
        wire.read_until(lambda _: over <= set(wire.seen.resets()))
        resets = wire.seen.resets()
        assert {resets[i] for i in over} == {ErrorCodes.REFUSED_STREAM}
        assert not set(resets) & set(ids[:MAX_STREAMS])
        # The streams within the limit are served once their uploads end.
        first = ids[0]
        wire.send(DataFrame(first, b"done", flags=["END_STREAM"]).serialize())
        wire.read_until(lambda _: first in wire.seen.statuses())
        assert wire.seen.statuses()[first] == "200"
    assert_serving(gw)


def test_rapid_reset_gets_goaway_enhance_your_calm(gw):
    with H2Wire(gw.port) as wire:
        burst = b"".join(
            wire.headers(i, "/echo/rr") + RstStreamFrame(i, error_code=8).serialize()  # CANCEL
            for i in range(1, 2001, 2)
        )
        wire.send(burst)
        assert goaway_code(wire) == ErrorCodes.ENHANCE_YOUR_CALM
        assert wire.read_to_close().closed
    assert_serving(gw)


@pytest.mark.skipif(shutil.which("h2load") is None, reason="nghttp2-client not installed")
def test_rapid_reset_does_not_starve_other_clients(gw):
    load = subprocess.Popen(
        ["h2load", "-n", "400", "-c", "4", "-m", "4", gw.url("/echo/load")],
        stdout=subprocess.PIPE,
        text=True,
    )
    for _ in range(5):
        with H2Wire(gw.port) as wire:
            burst = b"".join(
                wire.headers(i, "/echo/rr") + RstStreamFrame(i, error_code=8).serialize()
                for i in range(1, 1001, 2)
            )
            wire.send(burst)
            assert goaway_code(wire) == ErrorCodes.ENHANCE_YOUR_CALM
    out, _ = load.communicate(timeout=120)
    assert "400 succeeded, 0 failed, 0 errored" in out, out


def test_continuation_flood_of_empty_frames_is_cut_off(gw):
    before = rss_kib(gw)
    with H2Wire(gw.port) as wire:
        wire.send(open_headers(1, wire.block("/echo/cont")[:4]))
        sent = 0
        # Empty CONTINUATION frames add nothing to the header list: only their count stops
        # them. The server closes long before the 500,000th.
        frame = continuation(1, b"")
        while sent < 500_000 and wire.send(frame * 1000):
            sent += 1000
            if sent % 50_000 == 0 and wire.seen.closed:
                break
        code = goaway_code(wire)
        assert code in (ErrorCodes.ENHANCE_YOUR_CALM, ErrorCodes.PROTOCOL_ERROR), code
    assert rss_kib(gw) - before < 64 * 1024
    assert_serving(gw)


def test_continuation_flood_with_a_huge_header_block_is_bounded(gw):
    before = rss_kib(gw)
    with H2Wire(gw.port) as wire:
        block = wire.block("/echo/big", extra=[("x-flood", "v" * (8 * 1024 * 1024))])
        wire.send(open_headers(1, block[:16_000]))
        for at in range(16_000, len(block), 16_000):
            if not wire.send(continuation(1, block[at : at + 16_000])):
                break
        seen = wire.read_to_close()
        goaway = seen.goaway()
        assert goaway is not None, seen.frames
        assert goaway.error_code != ErrorCodes.NO_ERROR
    # The codec stops buffering at the header list limit: 8 MiB never reached memory.
    assert rss_kib(gw) - before < 32 * 1024
    assert_serving(gw)


def test_oversized_header_list_is_refused_and_the_connection_lives(gw):
    with H2Wire(gw.port) as wire:
        big = wire.block("/echo/h", extra=[("x-big", "v" * (MAX_HEADER_LIST + 1000))])
        wire.send(open_headers(1, big[:16_000]))
        for at in range(16_000, len(big), 16_000):
            wire.send(continuation(1, big[at : at + 16_000], last=at + 16_000 >= len(big)))
        wire.read_until(lambda _: 1 in wire.seen.statuses() or 1 in wire.seen.resets())
        refused = wire.seen.statuses().get(1) == "431" or 1 in wire.seen.resets()
        assert refused, wire.seen.frames
        # Between limits.max_header_bytes and the h2 limit: the pipeline's JSON 431.
        wire.send(wire.headers(3, "/echo/h", extra=[("x-mid", "v" * 10_000)]))
        wire.read_until(lambda _: 3 in wire.seen.statuses())
        assert wire.seen.statuses()[3] == "431"
        wire.send(wire.headers(5, "/echo/fine"))
        wire.read_until(lambda _: 5 in wire.seen.statuses())
        assert wire.seen.statuses()[5] == "200"


def test_window_overflow_is_a_flow_control_error(gw):
    with H2Wire(gw.port) as wire:
        # The connection window starts at 65,535: adding 2^31-1 overflows it.
        wire.send(WindowUpdateFrame(0, window_increment=2**31 - 1).serialize())
        assert goaway_code(wire) == ErrorCodes.FLOW_CONTROL_ERROR
    with H2Wire(gw.port) as wire:
        wire.send(wire.headers(1, "/echo/w", end_stream=False, method="POST"))
        wire.send(WindowUpdateFrame(1, window_increment=2**31 - 1).serialize())
        wire.read_until(lambda _: 1 in wire.seen.resets() or wire.seen.goaway() is not None)
        stream_error = wire.seen.resets().get(1) == ErrorCodes.FLOW_CONTROL_ERROR
        conn_error = (g := wire.seen.goaway()) is not None and g.error_code == 3
        assert stream_error or conn_error, wire.seen.frames
    assert_serving(gw)
