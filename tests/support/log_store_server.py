"""`pygate logs serve` as a separate process: a ClickHouse HTTP endpoint over chDB.

The log pipeline tests use it as the target of the gateway's server-mode sink
(`clickhouse://...`) and stop/start it to play a store that goes away under load.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from .gateway import run_cli, spawn
from .net import free_port, port_open, wait_until

READY_LINE = "pygate: logs serve on"


def logs_serve_available() -> bool:
    return run_cli("logs", "serve", "--help", timeout=60).returncode == 0


class LogStoreServer:
    """A writable `pygate logs serve` on 127.0.0.1 with its own chDB data directory."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.config_path = workdir / "store.yaml"
        self.log_path = workdir / "store.log"
        self.proc: subprocess.Popen[bytes] | None = None
        config = {
            # logs serve reads the store from a gateway config; the gateway part is unused.
            "listen": f"127.0.0.1:{free_port()}",
            # users: [] is the password-less "default" the sink URL names (loopback only).
            "log": {"store": "chdb://./store", "serve": {"users": []}},
        }
        self.config_path.write_text(yaml.safe_dump(config))

    @property
    def url(self) -> str:
        return f"clickhouse://default@127.0.0.1:{self.port}/pygate?compress=none"

    def start(self, timeout: float = 120) -> LogStoreServer:
        listen = f"127.0.0.1:{self.port}"
        args = [sys.executable, "-m", "pygate", "logs", "serve", "--config", str(self.config_path)]
        args += ["--listen", listen, "--allow-writes"]
        self.proc = spawn(args, self.log_path, cwd=self.workdir)

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"logs serve exited:\n{self.log_text()[-3000:]}")
            return port_open(self.port)

        wait_until(ready, timeout, what=f"pygate logs serve on {listen}")
        return self

    def stop(self, timeout: float = 60) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return 0 if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(30)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)

    def client(self) -> Any:
        """A real clickhouse-connect client on this server."""
        import clickhouse_connect

        return clickhouse_connect.get_client(
            host="127.0.0.1", port=self.port, username="default", compress=False
        )

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
