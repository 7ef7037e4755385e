"""Slow clients: one that stalls its upload, one that stops reading the response.

Neither may be blamed on the upstream (no 504, no ejected target, no upstream error), and
neither may hold a connection forever: `limits.client_body_timeout` (nginx's: between two
successive reads of the request body) answers 408; `limits.send_timeout` (between two
successive writes to the client) closes the connection. Both are in the call record.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator

import pytest
from support.client import assert_json_error, fetch, get, read_response
from support.configs import route, simple_config, upstream
from support.gateway import Gateway, running

BODY_TIMEOUT_S = 1.0
SEND_TIMEOUT_S = 2.0
BIG = 64 * 1024 * 1024


@pytest.fixture(scope="module")
def gw(upstreams, tmp_path_factory) -> Iterator[Gateway]:
    cfg = simple_config(
        upstreams,
        limits={
            "client_body_timeout": f"{int(BODY_TIMEOUT_S * 1000)}ms",
            "send_timeout": f"{int(SEND_TIMEOUT_S * 1000)}ms",
            "max_body_bytes": "128m",
        },
    )
    # One target that one failure would eject, and a read timeout far above the body's.
    single = upstream(
        "single", [upstreams.addr("live")], max_fails=1, retries=0, read_timeout="10s"
    )
    cfg["upstreams"].append(single)
    cfg["routes"] += [
        route("single", ["/single/*"], "single"),
        route(
            "single-py",
            ["/single-py/*"],
            "single",
            plugins={"request-transformer": {"add": {"headers": {"X-Py": "1"}}}},
        ),
    ]
    with running(Gateway(tmp_path_factory.mktemp("gw-slow"), cfg)) as gateway:
        yield gateway


def stalled_upload(gw: Gateway, path: str, head_extra: str, first: bytes) -> tuple[float, object]:
    """Send a request head and `first` body bytes, then nothing; (seconds to answer, answer)."""
    rid = uuid.uuid4().hex
    with socket.create_connection(("127.0.0.1", gw.port), timeout=15) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: x\r\nX-Request-ID: {rid}\r\n{head_extra}\r\n"
        sock.sendall(head.encode() + first)
        started = time.monotonic()
        resp = read_response(sock)
        waited = time.monotonic() - started
        # The connection is closed after the 408: the rest of that body never comes.
        sock.settimeout(3)
        try:
            assert sock.recv(1) == b""
        except ConnectionResetError:
            pass
    return waited, (resp, rid)


VARIANTS = {
    "nothing after the head": ("Content-Length: 1000\r\n", b""),
    "part of the body": ("Content-Length: 1000\r\n", b"x" * 10),
    "all but one byte": ("Content-Length: 1000\r\n", b"x" * 999),
    "chunked, one chunk": ("Transfer-Encoding: chunked\r\n", b"5\r\nhello\r\n"),
    "chunked, inside a chunk": ("Transfer-Encoding: chunked\r\n", b"10\r\nhel"),
}


@pytest.mark.parametrize("path", ["/single/up?mode=stream_in", "/single-py/up?mode=stream_in"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_stalled_upload_gets_408_and_the_upstream_stays(gw: Gateway, path: str, variant: str):
    before = gw.admin_get("/status")[1]["upstream_errors_total"]
    waited, (resp, rid) = stalled_upload(gw, path, *VARIANTS[variant])
    assert resp is not None, "answered, not dropped"
    assert resp.status == 408, (resp.status, resp.body[:300])
    assert resp.json()["error"]["kind"] == "client_body_timeout"
    assert BODY_TIMEOUT_S * 0.8 <= waited < BODY_TIMEOUT_S + 2.5, waited
    # The one target of a max_fails: 1 upstream was not ejected: the next call works.
    ok = get(gw.url("/single/after"))
    assert ok.status == 200, (ok.status, ok.body[:300])
    assert gw.admin_get("/status")[1]["upstream_errors_total"] == before
    record = gw.records([rid])[rid]
    assert record["status"] == 408 and record["error_kind"] == "client_body_timeout"


def test_a_slow_but_steady_upload_is_not_cut(gw: Gateway) -> None:
    # Each gap is below the timeout; the total is well above it (nginx's meaning).
    with socket.create_connection(("127.0.0.1", gw.port), timeout=15) as sock:
        head = b"POST /single/x?mode=stream_in HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"
        sock.sendall(head)
        for byte in b"hello":
            time.sleep(BODY_TIMEOUT_S * 0.6)
            sock.sendall(bytes([byte]))
        resp = read_response(sock)
    assert resp.status == 200 and resp.json()["body_size"] == 5


def test_a_fast_upload_is_untouched(gw: Gateway) -> None:
    resp = fetch("POST", gw.url("/single/x?mode=stream_in"), data=b"y" * (8 * 1024 * 1024))
    assert resp.status == 200 and resp.json()["body_size"] == 8 * 1024 * 1024


def test_slow_upstream_is_still_the_upstreams_timeout(gw: Gateway, upstreams) -> None:
    # The read timeout is the upstream's to fail: not turned into a 408 by this change.
    resp = fetch("POST", gw.url("/single/x?mode=slow&delay=12"), data=b"z" * 100)
    assert_json_error(resp, 504, "upstream_timeout")


def test_client_that_stops_reading_is_disconnected(gw: Gateway) -> None:
    rid = uuid.uuid4().hex
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    sock.connect(("127.0.0.1", gw.port))
    with sock:
        request = (
            f"GET /single/big?mode=bytes&size={BIG} HTTP/1.1\r\n"
            f"Host: x\r\nX-Request-ID: {rid}\r\n\r\n"
        )
        sock.sendall(request.encode())
        # Read nothing for well past the send timeout: the gateway's buffers fill, its
        # writes stall, and it must give up on us.
        time.sleep(SEND_TIMEOUT_S + 4)
        received, closed = 0, False
        sock.settimeout(5)
        try:
            while chunk := sock.recv(1 << 20):
                received += len(chunk)
            closed = True
        except ConnectionResetError:
            closed = True
        except TimeoutError:
            closed = False
    assert closed, "the gateway kept the connection of a client that stopped reading"
    assert received < BIG, "the whole body was sent: the send timeout never fired"
    record = gw.records([rid])[rid]
    assert record["error_kind"] == "send_timeout", record
    # The upstream served its part fine: a stalled reader is not an upstream failure.
    assert get(gw.url("/single/after-send")).status == 200


def test_a_slow_reader_within_the_timeout_gets_everything(gw: Gateway) -> None:
    size = 8 * 1024 * 1024
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.connect(("127.0.0.1", gw.port))
    with sock:
        sock.sendall(f"GET /single/b?mode=bytes&size={size} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        received = b""
        sock.settimeout(10)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            chunk = sock.recv(256 * 1024)
            if not chunk:
                break
            received += chunk
            if b"\r\n\r\n" in received:
                head, _, body = received.partition(b"\r\n\r\n")
                if len(body) >= size:
                    break
            time.sleep(0.05)  # reading, slowly, but never pausing for a send timeout
    assert received.startswith(b"HTTP/1.1 200")
    assert len(received.partition(b"\r\n\r\n")[2]) == size
