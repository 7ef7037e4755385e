"""Streaming both ways: the gateway must not buffer whole bodies.

The upstream holds its stream open until the test releases a gate on it directly, so
"the first event arrived before the upstream finished" is shown by construction rather
than by comparing clocks: if the gateway buffered, the first event would never arrive
while the gate is closed and the wait would time out.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
import uuid

import aiohttp
from support.client import TIMEOUT, fetch, get
from support.net import wait_until


def test_sse_first_event_arrives_while_upstream_still_waiting(gw, upstreams):
    gate = f"sse-{uuid.uuid4()}"

    async def scenario() -> tuple[bytes, bytes, bool]:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            url = gw.url(f"/echo/events?mode=sse&n=3&gate={gate}")
            async with session.get(url) as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"].startswith("text/event-stream")
                first = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 30)
                # The upstream is still blocked on the gate, so the stream must be open.
                still_open = not resp.content.at_eof()
                started = time.monotonic()
                await asyncio.to_thread(upstreams.release, gate)
                rest = await asyncio.wait_for(resp.content.read(), 30)
                assert time.monotonic() - started < 30
                return first, rest, still_open

    first, rest, still_open = asyncio.run(scenario())
    assert b"data: first from echo" in first
    assert still_open
    assert b"event 2 from echo" in rest and b"event 3 from echo" in rest
    assert b"timeout" not in rest


def test_request_body_is_streamed_to_upstream(gw, upstreams):
    # Send one chunk, then hold the rest back until the upstream has *received* bytes.
    gate = f"upload-{uuid.uuid4()}"
    head = os.urandom(64 * 1024)
    tail = os.urandom(1024 * 1024)

    async def body():
        yield head
        await asyncio.to_thread(
            wait_until,
            lambda: upstreams.progress(gate) > 0,
            30,
            what="the upstream to receive the first chunk before the client sent the rest",
        )
        yield tail

    async def scenario() -> dict:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            url = gw.url(f"/echo/upload?mode=stream_in&gate={gate}")
            async with session.post(url, data=body()) as resp:
                assert resp.status == 200
                return await resp.json()

    echo = asyncio.run(scenario())
    assert echo["body_size"] == len(head) + len(tail)
    assert echo["body_sha256"] == hashlib.sha256(head + tail).hexdigest()


def test_large_post_with_content_length(gw):
    payload = os.urandom(8 * 1024 * 1024)
    resp = fetch("POST", gw.url("/echo/big"), data=payload)
    assert resp.status == 200
    echo = resp.json()
    assert echo["body_size"] == len(payload)
    assert echo["body_sha256"] == hashlib.sha256(payload).hexdigest()


def test_large_response_body(gw):
    size = 5 * 1024 * 1024 + 7
    resp = get(gw.url(f"/echo/download?mode=bytes&size={size}"))
    assert resp.status == 200
    assert len(resp.body) == size
    assert resp.header("x-body-sha256") == hashlib.sha256(resp.body).hexdigest()
