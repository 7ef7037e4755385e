"""A test upstream: one aiohttp process serving several named sites on 127.0.0.1.

Run as a script (the tests start it as a subprocess so that it never competes with
the test client for the GIL):

    python upstream_app.py --site a --site b=9002

prints `upstream ready {"a": PORT, "b": 9002}` once listening (no port = a free one).

Every site answers every path. The behaviour is chosen by the query string so that any
gateway route can reach any behaviour and the forwarded path/query stay observable:

- default: echo method, path, query, headers, body size/sha256 (and the body when small)
  as JSON, plus `target` (the site's name) and `port`.
- `mode=slow&delay=S&gate=ID`: sleep S seconds before sending the response head; the
  number of such requests currently sleeping is at `/__inflight?gate=ID`.
- `mode=sse&gate=ID&n=N`: send one SSE event, then wait until `/__release?gate=ID` is
  called directly on the upstream (or 60 s pass), then send N-1 more events.
- `mode=close`: close the connection without answering.
- `mode=status&code=C`: answer with status C.
- `mode=bytes&size=N`: answer with N bytes (their sha256 in `X-Body-Sha256`).
- `mode=stream_in&gate=ID`: read the request body chunk by chunk, publishing the byte
  count at `/__progress?gate=ID`, and echo the final size.
- `resp_header=Name:Value` (repeatable, with the echo and `mode=status`): add that
  header to the response (e.g. Cache-Control:no-store).

Control endpoints (call them on the upstream directly, not through the gateway):
`/__release?gate=ID`, `/__progress?gate=ID`, `/__inflight?gate=ID`, `/__health`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import socket
import sys

from aiohttp import web

SMALL_BODY = 64 * 1024
GATE_WAIT_S = 60.0


class State:
    """Shared between all sites of this process."""

    def __init__(self) -> None:
        self.gates: dict[str, asyncio.Event] = {}
        self.progress: dict[str, int] = {}
        self.inflight: dict[str, int] = {}

    def gate(self, name: str) -> asyncio.Event:
        return self.gates.setdefault(name, asyncio.Event())


def make_app(state: State, ports: dict[int, str]) -> web.Application:
    def site_of(request: web.Request) -> tuple[str, int]:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        port = sockname[1] if sockname else 0
        return ports.get(port, "?"), port

    async def control(request: web.Request) -> web.Response:
        what = request.match_info["what"]
        gate = request.query.get("gate", "")
        if what == "release":
            state.gate(gate).set()
            return web.json_response({"released": gate})
        if what == "progress":
            return web.json_response({"bytes": state.progress.get(gate, 0)})
        if what == "inflight":
            return web.json_response({"inflight": state.inflight.get(gate, 0)})
        if what == "health":
            return web.json_response({"ok": True})
        return web.json_response({"error": "unknown control"}, status=404)

    async def handle(request: web.Request) -> web.StreamResponse:
        name, port = site_of(request)
        q = request.query
        mode = q.get("mode", "echo")

        if mode == "close":
            # Drop the connection without a response: the gateway must turn this into an
            # upstream error for the client, not hang.
            await request.read()
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError

        if mode == "sse":
            gate = state.gate(q.get("gate", "default"))
            n = int(q.get("n", "3"))
            resp = web.StreamResponse(
                headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
            )
            await resp.prepare(request)
            await resp.write(f"id: 1\ndata: first from {name}\n\n".encode())
            try:
                await asyncio.wait_for(gate.wait(), GATE_WAIT_S)
            except TimeoutError:
                await resp.write(b"event: timeout\ndata: gate never released\n\n")
            for i in range(2, n + 1):
                await resp.write(f"id: {i}\ndata: event {i} from {name}\n\n".encode())
            await resp.write_eof()
            return resp

        if mode == "stream_in":
            gate = q.get("gate", "default")
            digest = hashlib.sha256()
            total = 0
            async for chunk in request.content.iter_any():
                digest.update(chunk)
                total += len(chunk)
                state.progress[gate] = total
            return web.json_response(
                {
                    "target": name,
                    "port": port,
                    "body_size": total,
                    "body_sha256": digest.hexdigest(),
                }
            )

        if mode == "bytes":
            # A large, deterministic response body (its hash travels in a header).
            size = int(q.get("size", "1048576"))
            pattern = hashlib.sha256(name.encode()).digest() * 32
            data = (pattern * (size // len(pattern) + 1))[:size]
            digest = hashlib.sha256(data).hexdigest()
            return web.Response(
                body=data,
                content_type="application/octet-stream",
                headers={"X-Body-Sha256": digest},
            )

        if mode == "slow":
            gate = q.get("gate", "default")
            state.inflight[gate] = state.inflight.get(gate, 0) + 1
            try:
                await asyncio.sleep(float(q.get("delay", "3")))
            finally:
                state.inflight[gate] -= 1

        body = await request.read()
        doc = {
            "target": name,
            "port": port,
            "method": request.method,
            "path": request.path,
            "raw_path": request.raw_path,
            "query": request.raw_path.partition("?")[2],
            "headers": [[k, v] for k, v in request.headers.items()],
            "body_size": len(body),
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "body": body.decode("utf-8", "replace") if len(body) <= SMALL_BODY else None,
        }
        status = int(q.get("code", "200")) if mode == "status" else 200
        headers = {"X-Upstream-Target": name}
        for spec in q.getall("resp_header", []):  # "Name:Value", e.g. Cache-Control:no-store
            key, _, value = spec.partition(":")
            headers[key] = value
        return web.json_response(doc, status=status, headers=headers)

    app = web.Application(client_max_size=1024**3)
    app.router.add_route("GET", "/__{what}", control)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


async def main(sites: list[tuple[str, int]]) -> None:
    state = State()
    socks = {}
    for name, port in sites:
        # Bound here (port 0 = the kernel picks a free one) so there is no window in
        # which another process could take a port picked in advance.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        socks[name] = sock
    ports = {sock.getsockname()[1]: name for name, sock in socks.items()}
    runner = web.AppRunner(make_app(state, ports), access_log=None, handler_cancellation=True)
    await runner.setup()
    for sock in socks.values():
        await web.SockSite(runner, sock, backlog=1024).start()
    # The parent reads this line (the actual ports) before using the upstream.
    print("upstream ready", json.dumps({name: port for port, name in ports.items()}), flush=True)
    await asyncio.Event().wait()


def parse_site(text: str) -> tuple[str, int]:
    name, _, port = text.partition("=")
    return name, int(port or 0)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", action="append", type=parse_site, required=True)
    args = parser.parse_args()
    try:
        asyncio.run(main(args.site))
    except KeyboardInterrupt:
        sys.exit(0)
