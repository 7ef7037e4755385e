"""Server-sent events: read them from a provider, write them to a caller."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp


async def read_events(
    response: aiohttp.ClientResponse, first_timeout: float, idle_timeout: float
) -> AsyncIterator[tuple[str, str]]:
    """Yield (event, data) pairs; TimeoutError if the provider goes quiet too long."""
    event, data = "", []
    timeout = first_timeout
    while True:
        line = await asyncio.wait_for(response.content.readline(), timeout)
        timeout = idle_timeout
        if not line:  # end of the body
            if data:
                yield event, "\n".join(data)
            return
        text = line.decode("utf-8").rstrip("\r\n")
        if not text:
            if data:
                yield event, "\n".join(data)
            event, data = "", []
        elif text.startswith("data:"):
            data.append(text[5:].removeprefix(" "))
        elif text.startswith("event:"):
            event = text[6:].strip()
        # comments (":") and other fields (id, retry) carry nothing we use


def encode(data: bytes, event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + data + b"\n\n"
