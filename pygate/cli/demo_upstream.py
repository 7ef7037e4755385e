"""`pygate demo-upstream`: an upstream to put behind the gateway while trying it out.

Routes are matched on the end of the path, because the gateway forwards the full
request path (`/demo/sse` reaches this server as `/demo/sse`):

    .../sse?events=5&interval_ms=200   a server-sent events stream
    .../slow?ms=500                    answer after a delay
    .../status/503                     answer with that status
    anything else                      echo method, path, query, headers and body as JSON
"""

from __future__ import annotations

import asyncio
import sys
import time

from aiohttp import web

_MAX_SLOW_MS = 120_000
_MAX_EVENTS = 1_000


def _int_param(request: web.Request, name: str, default: int, upper: int) -> int:
    try:
        value = int(request.query.get(name, default))
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be an integer\n") from None
    return max(0, min(value, upper))


async def _echo(request: web.Request, status: int = 200) -> web.Response:
    body = await request.read()
    return web.json_response(
        {
            "method": request.method,
            "path": request.path,
            "query": dict(request.query),
            "headers": dict(request.headers),
            "body": body.decode("utf-8", errors="replace"),
            "served_by": request.app["listen"],
        },
        status=status,
    )


async def _sse(request: web.Request) -> web.StreamResponse:
    events = _int_param(request, "events", 5, _MAX_EVENTS)
    interval_ms = _int_param(request, "interval_ms", 200, 60_000)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    for number in range(1, events + 1):
        data = f'{{"n": {number}, "ts": {time.time():.3f}}}'
        await response.write(f"id: {number}\nevent: tick\ndata: {data}\n\n".encode())
        if number < events:
            await asyncio.sleep(interval_ms / 1000)
    await response.write_eof()
    return response


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(_int_param(request, "ms", 1000, _MAX_SLOW_MS) / 1000)
    return await _echo(request)


async def _dispatch(request: web.Request) -> web.StreamResponse:
    segments = request.path.rstrip("/").split("/")
    if segments[-1] == "sse":
        return await _sse(request)
    if segments[-1] == "slow":
        return await _slow(request)
    if len(segments) >= 2 and segments[-2] == "status" and segments[-1].isdigit():
        status = int(segments[-1])
        if 200 <= status <= 599:
            return await _echo(request, status=status)
    return await _echo(request)


def create_demo_app(listen: str) -> web.Application:
    app = web.Application()
    app["listen"] = listen
    app.router.add_route("*", "/{tail:.*}", _dispatch)
    return app


def run_demo_upstream(listen: str) -> int:
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        print(f"pygate: expected --listen HOST:PORT, got {listen!r}", file=sys.stderr)
        return 2
    import uvloop

    print(f"pygate: demo upstream on {listen}", file=sys.stderr)
    web.run_app(
        create_demo_app(listen),
        host=host.strip("[]"),
        port=int(port),
        print=None,
        access_log=None,
        loop=uvloop.new_event_loop(),
    )
    return 0
