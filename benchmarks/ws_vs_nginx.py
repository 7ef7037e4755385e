#!/usr/bin/env python3
"""WebSocket messages/s relayed by pygate vs nginx, to the same echo upstream.

The upstream accepts the handshake and echoes the bytes back as they come; the client
keeps `--window` small masked frames in flight on each of `--conns` sockets and counts the
frames that return. Both sides are asyncio streams moving chunks, so the proxy (one worker
for pygate, one worker process for nginx) is what limits the rate.

    python benchmarks/ws_vs_nginx.py [--seconds 5] [--conns 8] [--window 64] [--size 64] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HANDSHAKE_OK = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: x\r\n\r\n"
)


async def echo_upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(HANDSHAKE_OK)
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass  # the measuring client hung up, or the run is over
    writer.close()


def frame(size: int) -> bytes:
    header = (
        bytes([0x82, 0x80 | size]) if size < 126 else bytes([0x82, 0x80 | 126]) + size.to_bytes(2)
    )
    return header + b"\0\0\0\0" + os.urandom(size)


async def client(port: int, seconds: float, window: int, size: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET /ws/bench HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n"
        f"Upgrade: websocket\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    one = frame(size)
    writer.write(one * window)
    received, done = 0, 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        received += len(await reader.read(65536))
        back = received // len(one) - done
        if back:
            done += back
            writer.write(one * back)
    writer.close()
    return done


async def measure(port: int, seconds: float, conns: int, window: int, size: int) -> float:
    counts = await asyncio.gather(*(client(port, seconds, window, size) for _ in range(conns)))
    return sum(counts) / seconds


async def run(args: argparse.Namespace) -> None:
    server = await asyncio.start_server(echo_upstream, "127.0.0.1", 0)
    up = server.sockets[0].getsockname()[1]
    work = Path(tempfile.mkdtemp(prefix="ws-bench-"))
    gw_port, ngx_port = free_port(), free_port()
    config = {
        "listen": f"127.0.0.1:{gw_port}",
        "workers": 1,
        "admin": {"listen": f"127.0.0.1:{free_port()}"},
        "log": {"store": "chdb://./data"},
        "upstreams": [{"name": "echo", "targets": [f"127.0.0.1:{up}"]}],
        "routes": [{"name": "ws", "paths": ["/ws/*"], "upstream": "echo", "websocket": True}],
    }
    (work / "gw.yaml").write_text(yaml.safe_dump(config))
    (work / "nginx.conf").write_text(
        f"worker_processes 1; daemon off; pid {work}/nginx.pid; error_log {work}/err.log;\n"
        f"events {{ worker_connections 1024; }}\n"
        f"http {{ access_log off; server {{ listen 127.0.0.1:{ngx_port};\n"
        f"location /ws/ {{ proxy_pass http://127.0.0.1:{up}; proxy_http_version 1.1;\n"
        f'proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection "upgrade"; }} }} }}\n'
    )
    log = open(work / "procs.log", "ab")
    gw = subprocess.Popen(
        [sys.executable, "-m", "pygate", "serve", "--config", str(work / "gw.yaml")],
        stdout=log,
        stderr=log,
    )
    ngx = subprocess.Popen(
        ["nginx", "-c", str(work / "nginx.conf"), "-p", str(work)], stdout=log, stderr=log
    )
    try:
        for port in (gw_port, ngx_port):
            await wait_port(port)
        rates: dict[str, list[float]] = {"pygate": [], "nginx": []}
        for _ in range(args.runs):  # alternating, so drift on a shared machine hits both
            for name, port in (("pygate", gw_port), ("nginx", ngx_port)):
                rates[name].append(
                    await measure(port, args.seconds, args.conns, args.window, args.size)
                )
        med = {name: statistics.median(r) for name, r in rates.items()}
        for name, rate in med.items():
            print(f"{name}: {rate:,.0f} messages/s (median of {args.runs})")
        print(f"pygate/nginx: {med['pygate'] / med['nginx']:.2f}")
    finally:
        gw.terminate()
        ngx.terminate()
        gw.wait(60)
        ngx.wait(60)
        server.close()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_port(port: int) -> None:
    for _ in range(600):
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--conns", type=int, default=8)
    p.add_argument("--window", type=int, default=64)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--runs", type=int, default=3)
    asyncio.run(run(p.parse_args()))
