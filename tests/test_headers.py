"""Headers the upstream sees: X-Forwarded-*, X-Real-IP, Forwarded, X-Request-Id, hop-by-hop
removal."""

from __future__ import annotations

import uuid

from support.client import get, raw_exchange


def test_forwarded_headers_are_added(gw):
    resp = get(gw.url("/echo/fwd"))
    assert resp.status == 200
    seen = resp.upstream_headers()
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"


def test_forwarded_for_from_an_untrusted_client_is_replaced_not_extended(gw):
    # No trusted_proxies (the default): a client's own X-Forwarded-For is not believed, so
    # upstreams never see an address the client picked (tests/security has the variants).
    seen = get(gw.url("/echo/fwd"), headers={"X-Forwarded-For": "203.0.113.7"}).upstream_headers()
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-real-ip"] == "127.0.0.1"
    assert seen["forwarded"] == f'for=127.0.0.1;host="127.0.0.1:{gw.port}";proto=http'


def test_request_id_is_generated_and_returned(gw):
    first = get(gw.url("/echo/rid"))
    second = get(gw.url("/echo/rid"))
    rid = first.header("x-request-id")
    assert rid and len(rid) >= 8
    assert first.upstream_headers()["x-request-id"] == rid
    assert second.header("x-request-id") != rid, "request ids must be unique"


def test_client_request_id_is_passed_on(gw):
    rid = f"client-{uuid.uuid4()}"
    resp = get(gw.url("/echo/rid"), headers={"X-Request-Id": rid})
    assert resp.header("x-request-id") == rid
    assert resp.upstream_headers()["x-request-id"] == rid


def _raw_echo(gw, extra_headers: str) -> dict:
    request = (
        "GET /echo/hop HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{gw.port}\r\n"
        f"{extra_headers}"
        "X-End-To-End: kept\r\n"
        "\r\n"
    ).encode()
    resp = raw_exchange(gw.port, request)
    assert resp is not None and resp.status == 200, resp
    return {k.lower(): v for k, v in resp.json()["headers"]}


def test_standard_hop_by_hop_headers_are_removed(gw):
    seen = _raw_echo(
        gw,
        "Connection: keep-alive\r\n"
        "Keep-Alive: timeout=5\r\n"
        "TE: trailers\r\n"
        "Proxy-Authorization: Basic c2VjcmV0\r\n",
    )
    assert seen.get("x-end-to-end") == "kept"
    for name in ("keep-alive", "te", "proxy-authorization"):
        assert name not in seen, (name, seen)


def test_headers_named_in_connection_are_removed(gw):
    # RFC 9110 7.6.1: a proxy removes the fields the Connection header lists.
    seen = _raw_echo(gw, "Connection: keep-alive, X-Hop-Custom\r\nX-Hop-Custom: secret\r\n")
    assert seen.get("x-end-to-end") == "kept"
    assert "x-hop-custom" not in seen, seen


def test_keep_alive_serves_several_requests_on_one_connection(gw):
    import socket

    from support.client import RawConn, read_response

    with socket.create_connection(("127.0.0.1", gw.port), timeout=30) as sock:
        conn = RawConn(sock)
        for i in range(3):
            conn.sendall(f"GET /echo/ka{i} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            resp = read_response(conn)
            assert resp is not None and resp.status == 200
            assert resp.json()["path"] == f"/echo/ka{i}"


def test_pipelined_requests_are_answered_in_order(gw):
    import socket

    from support.client import RawConn, read_response

    with socket.create_connection(("127.0.0.1", gw.port), timeout=30) as sock:
        conn = RawConn(sock)
        conn.sendall(
            b"GET /echo/p1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            b"GET /echo/p2 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        )
        paths = [read_response(conn).json()["path"] for _ in range(2)]
    assert paths == ["/echo/p1", "/echo/p2"]
