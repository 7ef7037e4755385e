"""Clients: a small synchronous wrapper over aiohttp and a raw-socket HTTP/1.1 client.

Tests are plain (sync) pytest functions; anything concurrent runs an asyncio program
with `asyncio.run`, so no pytest asyncio plugin is needed.
"""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import dataclass, field
from typing import Any

import aiohttp

TIMEOUT = aiohttp.ClientTimeout(total=60)


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes
    raw_headers: list[tuple[str, str]] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def upstream_headers(self) -> dict[str, str]:
        """Headers the echo upstream saw (lower-cased names; repeated names joined)."""
        seen: dict[str, str] = {}
        for k, v in self.json()["headers"]:
            k = k.lower()
            seen[k] = f"{seen[k]}, {v}" if k in seen else v
        return seen


async def afetch(session: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> Response:
    async with session.request(method, url, allow_redirects=False, **kw) as resp:
        body = await resp.read()
        return Response(
            resp.status,
            {k.lower(): v for k, v in resp.headers.items()},
            body,
            [(k, v) for k, v in resp.headers.items()],
        )


def fetch(method: str, url: str, **kw: Any) -> Response:
    """One request with a fresh aiohttp session (no connection reuse between calls)."""

    async def go() -> Response:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            return await afetch(session, method, url, **kw)

    return asyncio.run(go())


def get(url: str, **kw: Any) -> Response:
    return fetch("GET", url, **kw)


def assert_json_error(resp: Response, status: int, kind: str) -> dict:
    """The gateway's own errors: status, JSON body with kind, request id matching header."""
    assert resp.status == status, (resp.status, resp.body[:500])
    assert "json" in (resp.header("content-type") or ""), resp.headers
    doc = resp.json()
    err = doc["error"]
    assert err["status"] == status, doc
    assert err["kind"] == kind, doc
    assert isinstance(err.get("message"), str) and err["message"], doc
    rid = resp.header("x-request-id")
    assert rid, f"no x-request-id on a {status}"
    assert err["request_id"] == rid, (doc, rid)
    return err


# ----- raw sockets: for input no well-behaved client library would send -------------


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class RawConn:
    """A socket that keeps bytes read past the end of one response for the next one
    (needed for pipelining, where two responses can arrive in one recv)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.pending = b""

    def recv(self, n: int) -> bytes:
        if self.pending:
            data, self.pending = self.pending[:n], self.pending[n:]
            return data
        return self.sock.recv(n)

    def unread(self, data: bytes) -> None:
        self.pending = data + self.pending

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)


def read_response(sock: socket.socket | RawConn) -> RawResponse | None:
    """Read one HTTP/1.1 response; None if the peer closed before sending anything.

    With a RawConn, bytes after the response stay available for the next call.
    """
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            if not buf:
                return None
            raise ConnectionError(f"closed inside the response head: {buf[:200]!r}")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        n = int(headers["content-length"])
        while len(rest) < n:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        body, extra = rest[:n], rest[n:]
        if extra and isinstance(sock, RawConn):
            sock.unread(extra)
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        body, extra = _read_chunked(sock, rest)
        if extra and isinstance(sock, RawConn):
            sock.unread(extra)
    else:
        while chunk := sock.recv(65536):
            rest += chunk
        body = rest
    return RawResponse(status, headers, body)


def _read_chunked(sock: socket.socket | RawConn, buf: bytes) -> tuple[bytes, bytes]:
    body = b""
    while True:
        while b"\r\n" not in buf:
            buf += sock.recv(65536)
        size_line, _, buf = buf.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        while len(buf) < size + 2:
            buf += sock.recv(65536)
        body += buf[:size]
        buf = buf[size + 2 :]
        if size == 0:
            return body, buf


def raw_exchange(port: int, data: bytes, timeout: float = 30) -> RawResponse | None:
    """Send bytes as-is on a new connection and read one response."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        return read_response(sock)
