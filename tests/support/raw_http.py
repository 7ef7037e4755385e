"""Requests written byte by byte, for the attack suite: no client library gets a chance to
normalise the path, merge duplicate headers or fix a bad Host before the gateway sees it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .client import RawResponse, raw_exchange

# Marks "send no Host header at all" (an empty string sends an empty one).
NO_HOST = object()


def raw_request(
    port: int,
    target: str,
    headers: Sequence[tuple[str, str]] = (),
    *,
    method: str = "GET",
    version: str = "HTTP/1.1",
    host: Any = None,
) -> RawResponse:
    """Send `METHOD TARGET VERSION` with `headers` as they are, on a new connection.

    `host` defaults to 127.0.0.1:PORT ("" sends an empty one); NO_HOST leaves Host out
    (then add your own Host headers, several if you like, through `headers`).
    """
    lines = [f"{method} {target} {version}"]
    if host is not NO_HOST:
        lines.append(f"Host: {f'127.0.0.1:{port}' if host is None else host}")
    lines += [f"{name}: {value}" for name, value in headers]
    lines.append("Connection: close")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    resp = raw_exchange(port, data)
    assert resp is not None, f"connection closed without a response to {target!r}"
    return resp


def echoed(resp: RawResponse) -> dict[str, Any]:
    """What the echo upstream received: its JSON, plus `seen`, the header names (lower
    case) mapped to every value that arrived under that name."""
    assert resp.status == 200, (resp.status, resp.body[:300])
    doc = resp.json()
    seen: dict[str, list[str]] = {}
    for name, value in doc["headers"]:
        seen.setdefault(name.lower(), []).append(value)
    doc["seen"] = seen
    return doc


def error_kind(resp: RawResponse) -> str:
    """The `kind` of one of the gateway's JSON errors (asserting the shape on the way)."""
    assert "json" in (resp.header("content-type") or ""), (resp.status, resp.body[:300])
    err = resp.json()["error"]
    assert err["status"] == resp.status, err
    assert err["request_id"] == resp.header("x-request-id"), err
    return err["kind"]
