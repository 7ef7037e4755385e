"""Run the real `python -m pygate logs serve` (the ClickHouse HTTP interface) as a process.

The one helper for every test that starts `logs serve`: its own tests, the attack tests,
and the log pipeline tests that use it as the gateway's server-mode sink (`sink_url`) and
stop/start it to play a store that goes away under load.

The server first listens on port 0 and the helper reads the bound port from its ready
line, so parallel test sessions never race for a port; a restart takes that port again,
so a gateway configured with `sink_url` finds the store where it was.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from .gateway import START_TIMEOUT, kill_process, spawn, stop_process
from .net import wait_until

READY = re.compile(r"pygate: logs serve on (\S+):(\d+) ")


class LogsServer:
    """`pygate logs serve` on a config of its own in `workdir`.

    `config` is the user-facing YAML config as a dict (listen is filled in); the store
    defaults to `chdb://./data` inside `workdir`, and log.serve.users to `[]` (the
    password-less user default, which logs serve allows on loopback when said so).
    """

    def __init__(
        self,
        workdir: Path,
        config: dict[str, Any] | None = None,
        allow_writes: bool = False,
        config_path: Path | None = None,
    ) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.allow_writes = allow_writes
        self.log_path = workdir / "logs-serve.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        if config_path is not None:
            self.config_path = config_path  # an existing gateway config, used as it is
        else:
            config = dict(config or {})
            config.setdefault("listen", "127.0.0.1:1")  # required by the schema, unused here
            config.setdefault("log", {}).setdefault("store", "chdb://./data")
            config["log"].setdefault("serve", {}).setdefault("users", [])
            self.config_path = workdir / "logs-serve.yaml"
            self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    def create_in_store(self, *statements: str) -> None:
        """Run DDL on the store before the server starts (logs serve itself allows
        INSERTs only), in a process of its own: chDB holds a data directory per process."""
        script = (
            "import sys\nfrom chdb import session\n"
            "s = session.Session(sys.argv[1])\n"
            "for sql in sys.argv[2:]:\n    s.query(sql)\ns.cleanup()\n"
        )
        store = self.workdir / "data"
        done = subprocess.run(
            [sys.executable, "-c", script, str(store), *statements],
            capture_output=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr.decode()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    @property
    def sink_url(self) -> str:
        """The gateway's `log.store` for this server (the password-less default user)."""
        return f"clickhouse://default@127.0.0.1:{self.port}/pygate?compress=none"

    def client(self, **kwargs: Any) -> Any:
        """A real clickhouse-connect client on this server."""
        import clickhouse_connect

        kwargs.setdefault("username", "default")
        kwargs.setdefault("compress", False)
        return clickhouse_connect.get_client(host="127.0.0.1", port=self.port, **kwargs)

    def launch(self, listen: str | None = None) -> subprocess.Popen[bytes]:
        """Start the process without waiting for it (`listen` defaults to the port of an
        earlier start, or a free one)."""
        # Only lines written after this launch count (the log is shared by restarts).
        self._log_offset = len(self.log_text())
        args = [sys.executable, "-m", "pygate", "logs", "serve"]
        args += ["--config", str(self.config_path), "--listen", listen or f"127.0.0.1:{self.port}"]
        if self.allow_writes:
            args.append("--allow-writes")
        self.proc = spawn(args, self.log_path, cwd=self.workdir)
        return self.proc

    def start(self, timeout: float = START_TIMEOUT) -> LogsServer:
        self.launch()

        def ready() -> int | None:
            match = READY.search(self.log_text()[self._log_offset :])
            if match:
                return int(match.group(2))
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"logs serve exited with {self.proc.returncode}:\n{self.log_text()[-3000:]}"
                )
            return None

        self.port = wait_until(ready, timeout, what=f"logs serve ready line in {self.log_path}")
        return self

    def wait_exit(self, timeout: float = START_TIMEOUT) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self, timeout: float = 60) -> int:
        return stop_process(self.proc, "logs serve", self.log_text, timeout)

    def kill(self) -> None:
        kill_process(self.proc)


class StandaloneLogd:
    """`python -m pygate logd --config FILE` on its own (no gateway), e.g. for `logs serve`
    to go through. Its output goes to `log_path` next to the config."""

    READY = "logd: serving"

    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        self.log_path = config_path.parent / "logd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self, timeout: float = START_TIMEOUT) -> StandaloneLogd:
        before = self.log_text().count(self.READY)
        args = [sys.executable, "-m", "pygate", "logd", "--config", str(self.config_path)]
        self.proc = spawn(args, self.log_path, cwd=self.config_path.parent)

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"logd exited with {self.proc.returncode}:\n{self.log_text()}")
            return self.log_text().count(self.READY) > before

        wait_until(ready, timeout, what=f"logd ready line in {self.log_path}")
        return self

    def stop(self, timeout: float = 60) -> int:
        return stop_process(self.proc, "logd", self.log_text, timeout)

    def kill(self) -> None:
        kill_process(self.proc)
