"""Malformed and abusive input: JSON errors, limits, slow headers; others keep being served.

Raw sockets send what no client library would. A gateway with small limits of its own
is used so that the limits are cheap to exceed.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
from support.client import RawResponse, get, raw_exchange, read_response
from support.configs import simple_config
from support.gateway import Gateway

LIMITS = {
    "max_header_bytes": 8192,
    "max_uri_bytes": 2048,
    "max_body_bytes": "1m",
    "header_timeout": "1s",
}


@pytest.fixture(scope="module")
def lgw(upstreams, tmp_path_factory):
    gateway = Gateway(tmp_path_factory.mktemp("gw-limits"), simple_config(upstreams, limits=LIMITS))
    try:
        gateway.start()
        yield gateway
        gateway.stop()
    finally:
        gateway.kill()


# request id -> (status, kind) of every error answered above; checked against the store
# by the last test of this file.
ANSWERED: dict[str, tuple[int, str]] = {}


def assert_raw_json_error(resp: RawResponse | None, status: int, kind: str) -> None:
    assert resp is not None, "connection closed without a response"
    assert resp.status == status, (resp.status, resp.body[:300])
    assert "json" in (resp.header("content-type") or ""), resp.headers
    err = json.loads(resp.body)["error"]
    assert (err["status"], err["kind"]) == (status, kind), err
    assert resp.header("x-request-id") == err["request_id"]
    ANSWERED[err["request_id"]] = (status, kind)


def assert_serving(gateway: Gateway) -> None:
    resp = get(gateway.url("/echo/ok"))
    assert resp.status == 200 and resp.json()["path"] == "/echo/ok"


def test_malformed_request_line_is_400(lgw):
    resp = raw_exchange(lgw.port, b"THIS IS NOT HTTP AT ALL\r\n\r\n")
    assert_raw_json_error(resp, 400, "bad_request")
    assert_serving(lgw)


def test_garbage_bytes_are_400(lgw):
    resp = raw_exchange(lgw.port, b"\x00\x01\x02\xff\xfe GET / HTTP/1.1\r\n\r\n")
    assert_raw_json_error(resp, 400, "bad_request")
    assert_serving(lgw)


def test_oversized_headers_are_431(lgw):
    request = (f"GET /echo/x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {'a' * 10_000}\r\n\r\n").encode()
    assert_raw_json_error(raw_exchange(lgw.port, request), 431, "header_too_large")
    assert_serving(lgw)


def test_many_headers_over_the_limit_are_431(lgw):
    headers = "".join(f"X-H{i}: {'v' * 40}\r\n" for i in range(300))
    request = f"GET /echo/x HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode()
    assert_raw_json_error(raw_exchange(lgw.port, request), 431, "header_too_large")
    assert_serving(lgw)


def test_long_uri_is_414(lgw):
    request = f"GET /echo/{'u' * 3000} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    assert_raw_json_error(raw_exchange(lgw.port, request), 414, "uri_too_long")
    assert_serving(lgw)


def test_big_body_by_content_length_is_413_without_sending_it(lgw):
    # Only the head is sent: the gateway must answer from Content-Length alone.
    request = (
        f"POST /echo/x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {2 * 1024 * 1024}\r\n\r\n"
    ).encode()
    assert_raw_json_error(raw_exchange(lgw.port, request), 413, "body_too_large")
    assert_serving(lgw)


def test_body_under_the_limit_passes(lgw):
    resp = get(lgw.url("/echo/x"), data=b"z" * (512 * 1024))
    assert resp.status == 200
    assert resp.json()["body_size"] == 512 * 1024


def test_slow_headers_get_408_or_close_while_others_are_served(lgw):
    served: list[int] = []
    stop = threading.Event()

    def other_client() -> None:
        while not stop.is_set():
            served.append(get(lgw.url("/echo/meanwhile")).status)
            time.sleep(0.05)

    worker = threading.Thread(target=other_client, daemon=True)
    worker.start()
    outcome = None
    try:
        with socket.create_connection(("127.0.0.1", lgw.port), timeout=30) as sock:
            sock.sendall(b"GET /echo/slow HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            sock.settimeout(0.25)
            # header_timeout is 1s; trickle a header line every 250ms for up to 20s.
            deadline = time.monotonic() + 20
            i = 0
            while time.monotonic() < deadline:
                try:
                    data = sock.recv(1, socket.MSG_PEEK)
                except TimeoutError:
                    data = None
                except ConnectionResetError:
                    outcome = "reset"
                    break
                if data == b"":
                    outcome = "closed"
                    break
                if data:
                    sock.settimeout(30)
                    outcome = read_response(sock)
                    break
                try:
                    sock.sendall(f"X-Slow-{i}: y\r\n".encode())
                except (BrokenPipeError, ConnectionResetError):
                    outcome = "closed"
                    break
                i += 1
    finally:
        stop.set()
        worker.join(60)

    print(f"slow-header outcome: {outcome!r}")
    assert outcome is not None, "a client trickling headers was still connected after 20s"
    if isinstance(outcome, RawResponse):
        assert_raw_json_error(outcome, 408, "request_timeout")
    assert served and all(s == 200 for s in served), served
    assert_serving(lgw)


def test_headers_just_under_the_limit_pass(lgw):
    request = (f"GET /echo/x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {'a' * 6000}\r\n\r\n").encode()
    resp = raw_exchange(lgw.port, request)
    assert resp is not None and resp.status == 200
    seen = {k.lower(): v for k, v in json.loads(resp.body)["headers"]}
    assert len(seen["x-big"]) == 6000


def test_client_abort_mid_request_does_not_hurt(lgw):
    # A client that disconnects while its request is at the upstream.
    with socket.create_connection(("127.0.0.1", lgw.port), timeout=30) as sock:
        sock.sendall(b"GET /echo/x?mode=slow&delay=2&gate=abort HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.3)
    assert_serving(lgw)


def test_rejected_requests_are_logged(lgw):
    # Runs last in this module: every error answered above is a row in the store.
    assert len(ANSWERED) >= 6, ANSWERED
    records = lgw.records(list(ANSWERED))
    for rid, (status, kind) in ANSWERED.items():
        rec = records[rid]
        assert (rec["status"], rec["error_kind"]) == (status, kind), rec
        assert rec["client_ip"] == "127.0.0.1"
