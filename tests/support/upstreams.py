"""Start the aiohttp test upstream (support/upstream_app.py) as a real subprocess."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from .gateway import spawn
from .net import port_open, wait_until

APP = Path(__file__).with_name("upstream_app.py")
READY = "upstream ready "


class Upstreams:
    """One process serving several named sites, each on its own free port."""

    def __init__(self, names: list[str], log_path: Path) -> None:
        self.names = names
        self.ports: dict[str, int] = {}
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> Upstreams:
        args = [sys.executable, str(APP)]
        for name in self.names:
            args += ["--site", name]  # the upstream binds port 0 and reports the ports
        self.proc = spawn(args, self.log_path)

        def ready() -> dict[str, int] | None:
            text = self.log_path.read_text(errors="replace")
            if self.proc.poll() is not None:
                raise RuntimeError(f"upstream exited early:\n{text}")
            for line in text.splitlines():
                if line.startswith(READY):
                    return json.loads(line[len(READY) :])
            return None

        self.ports = wait_until(ready, timeout, what="test upstream ready line")
        assert sorted(self.ports) == sorted(self.names), self.ports
        wait_until(lambda: all(port_open(p) for p in self.ports.values()), timeout)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)

    def port(self, name: str) -> int:
        return self.ports[name]

    def addr(self, name: str) -> str:
        return f"127.0.0.1:{self.ports[name]}"

    def name_of_port(self, port: int) -> str:
        return {p: n for n, p in self.ports.items()}[port]

    # Control endpoints are called on the upstream directly, never through the gateway.
    def _control(self, what: str, gate: str) -> dict:
        port = next(iter(self.ports.values()))
        url = f"http://127.0.0.1:{port}/__{what}?gate={gate}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            return json.loads(resp.read())

    def release(self, gate: str) -> None:
        self._control("release", gate)

    def progress(self, gate: str) -> int:
        return self._control("progress", gate)["bytes"]

    def inflight(self, gate: str) -> int:
        return self._control("inflight", gate)["inflight"]
