"""keepalive_timeout (idle connections between requests) apart from header_timeout (a
request head, once begun): nginx's keepalive_timeout and client_header_timeout.

The waits here are whole seconds against 60-second timeouts on the other clock, so no
assertion depends on a tight timing."""

from __future__ import annotations

import json
import socket
import time

import pytest
from hyperframe.frame import GoAwayFrame
from support.client import read_response
from support.configs import simple_config
from support.h2wire import H2Wire


def request(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode()


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=30)


@pytest.fixture
def short_header(upstreams, make_gateway):
    limits = {"header_timeout": "1s", "keepalive_timeout": "60s"}
    return make_gateway(simple_config(upstreams, limits=limits), name="short-header")


@pytest.fixture
def short_keepalive(upstreams, make_gateway):
    limits = {"header_timeout": "60s", "keepalive_timeout": "1s"}
    config = simple_config(upstreams, limits=limits, http2={"h2c": True})
    return make_gateway(config, name="short-keepalive")


def test_idle_connection_outlives_the_header_timeout(short_header):
    with connect(short_header.port) as sock:
        sock.sendall(request("/echo/one"))
        assert read_response(sock).status == 200
        time.sleep(2.5)  # past header_timeout (1s), far from keepalive_timeout (60s)
        sock.sendall(request("/echo/two"))
        resp = read_response(sock)
        assert resp is not None and resp.status == 200
        assert json.loads(resp.body)["path"] == "/echo/two"


def test_a_begun_head_is_still_on_the_header_clock(short_header):
    with connect(short_header.port) as sock:
        sock.sendall(request("/echo/one"))
        assert read_response(sock).status == 200
        sock.sendall(b"GET /echo/slow HTTP/1.1\r\nHost: t\r\n")
        resp = read_response(sock)
        assert resp is not None and resp.status == 408
        assert json.loads(resp.body)["error"]["kind"] == "request_timeout"


def test_idle_http1_connection_is_closed_after_keepalive_timeout(short_keepalive):
    with connect(short_keepalive.port) as sock:
        sock.sendall(request("/echo/one"))
        assert read_response(sock).status == 200
        # Closed quietly (no 408: no request was begun), well before header_timeout.
        assert sock.recv(1024) == b""


def test_idle_http2_connection_gets_goaway(short_keepalive):
    with H2Wire(short_keepalive.port) as wire:
        wire.send(wire.headers(1, "/echo/h2"))
        wire.read_until(lambda _: 1 in wire.seen.statuses())
        assert wire.seen.statuses()[1] == "200"
        # hyper's graceful GOAWAY (NO_ERROR) comes with a PING; this client never answers
        # it, and is closed one keep-alive period later all the same.
        goaway = wire.read_until(lambda f: isinstance(f, GoAwayFrame))
        assert goaway is not None and goaway.error_code == 0
        assert wire.read_to_close().closed
