"""A throw-away redis-server for tests: a free loopback port, its files in a temp dir,
stoppable and restartable on the same port (to test a Redis outage)."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
from pathlib import Path

from .gateway import spawn
from .net import free_port, port_open, wait_until


def redis_available() -> bool:
    return shutil.which("redis-server") is not None


class RedisServer:
    def __init__(self, workdir: Path, password: str | None = None) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.password = password
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "redis.log"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        args = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.workdir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
        ]
        if self.password:
            args += ["--requirepass", self.password]
        self.proc = spawn(args, self.log_path)
        wait_until(lambda: port_open(self.port), 30, what="redis-server listening")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)
        self.proc = None

    def command(self, *args: str) -> str:
        """One command over RESP, for checks from the test (no client library needed)."""
        parts = [*(["AUTH", self.password] if self.password else []), *args]
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            out = b""
            if self.password:
                s.sendall(_resp(["AUTH", self.password]))
                s.recv(100)
                parts = list(args)
            s.sendall(_resp(parts))
            out = s.recv(65536)
        return out.decode(errors="replace")


def _resp(parts: list[str]) -> bytes:
    out = f"*{len(parts)}\r\n".encode()
    for p in parts:
        b = p.encode()
        out += b"$%d\r\n%s\r\n" % (len(b), b)
    return out
