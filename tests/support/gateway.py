"""Run the real gateway (`python -m pygate serve`) and its CLI as subprocesses."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from .net import free_port, wait_until

READY_LINE = "pygate: serving on"
RELOADED_LINE = "pygate: reloaded config"
REFUSED_LINE = "pygate: reload refused"

# Generous: the first start on a cold CI box also creates the chDB store.
START_TIMEOUT = 120
CLI_TIMEOUT = 120


def cli_env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def spawn(args: list[str], log_path: Path, cwd: Path | None = None) -> subprocess.Popen:
    """Start a test process with its output appended to `log_path`.

    In its own process group, so a Ctrl-C aimed at pytest does not reach it.
    """
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env=cli_env(),
            start_new_session=True,
        )


def stop_process(
    proc: subprocess.Popen | None, what: str, log_text: Callable[[], str], timeout: float = 60
) -> int:
    """SIGTERM and wait; returns the exit code (SIGKILL after `timeout`, then raise with
    the tail of the process's log)."""
    if proc is None:
        return 0
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(30)
        raise RuntimeError(
            f"{what} did not exit within {timeout}s of SIGTERM:\n{log_text()[-3000:]}"
        ) from None


def kill_process(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait(30)


def run_cli(*args: str, timeout: float = CLI_TIMEOUT, cwd: Path | None = None):
    """Run `python -m pygate ARGS`; return the CompletedProcess (text mode)."""
    return subprocess.run(
        [sys.executable, "-m", "pygate", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
        env=cli_env(),
    )


def dump_log(gateway: Gateway) -> None:
    """Print the tail of a gateway's log (pytest shows it with the failure)."""
    text = gateway.log_text()
    if text:
        print(f"----- gateway log {gateway.log_path} (tail) -----\n{text[-4000:]}")


@contextlib.contextmanager
def running(gateway: Gateway) -> Iterator[Gateway]:
    """Start `gateway` (its log printed if that fails), yield it, stop it in any case."""
    try:
        gateway.start()
    except Exception:
        dump_log(gateway)
        gateway.kill()
        raise
    try:
        yield gateway
    finally:
        try:
            gateway.stop()
        finally:
            gateway.kill()


class Gateway:
    """A gateway process with its own directory, config file, log store and log file.

    `config` is the user-facing YAML config as a dict; `listen` and `admin.listen` are
    filled with free ports when absent. The log store defaults to `chdb://./data`
    (relative to the config file, i.e. inside `workdir`).
    """

    def __init__(self, workdir: Path, config: dict[str, Any], watch: bool = False) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config = config
        self.watch = watch
        self.config_path = workdir / "gateway.yaml"
        self.log_path = workdir / "gateway.log"
        self.proc: subprocess.Popen[bytes] | None = None
        # `"listen": None`: no plain listener at all (a TLS-only gateway, `listeners` only).
        self._no_plain = "listen" in config and config["listen"] is None
        if self._no_plain:
            del config["listen"]
        self._auto_ports = "listen" not in config and not self._no_plain
        self.config.setdefault("admin", {})
        self._auto_admin = "listen" not in self.config["admin"]
        log = self.config.setdefault("log", {})
        log.setdefault("store", "chdb://./data")
        log.setdefault("flush_interval", "200ms")

    # ----- addresses -------------------------------------------------------------
    # Addresses are those the process was started with: a config written later (for a
    # reload, possibly a bad one) does not move the listeners.
    @property
    def port(self) -> int:
        return int(self._listen.rsplit(":", 1)[1])

    @property
    def admin_port(self) -> int:
        return int(self._admin_listen.rsplit(":", 1)[1])

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def admin_url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.admin_port}{path}"

    # ----- config file -------------------------------------------------------------
    def write_config(self, config: dict[str, Any] | None = None, raw: str | None = None) -> None:
        """Rewrite the config file in place with one write() (as an editor saving would)."""
        if config is not None:
            self.config = self._with_defaults(copy.deepcopy(config))
        text = raw if raw is not None else yaml.safe_dump(self.config, sort_keys=False)
        with open(self.config_path, "w") as f:
            f.write(text)

    def _with_defaults(self, config: dict[str, Any]) -> dict[str, Any]:
        """Keep the running addresses and the test log settings unless a test sets them."""
        if hasattr(self, "_listen"):
            if self._listen is not None:
                config.setdefault("listen", self._listen)
            config.setdefault("admin", {}).setdefault("listen", self._admin_listen)
            if self._token:
                config["admin"].setdefault("token", self._token)
        log = config.setdefault("log", {})
        log.setdefault("store", "chdb://./data")
        log.setdefault("flush_interval", "200ms")
        return config

    # ----- process -----------------------------------------------------------------
    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_count(self, needle: str) -> int:
        return self.log_text().count(needle)

    def start(self, timeout: float = START_TIMEOUT) -> Gateway:
        for attempt in range(3):
            if self._auto_ports:
                self.config["listen"] = f"127.0.0.1:{free_port()}"
            if self._auto_admin:
                self.config["admin"]["listen"] = f"127.0.0.1:{free_port()}"
            self.write_config()
            self._listen = self.config.get("listen")
            self._admin_listen = self.config["admin"]["listen"]
            self._token = self.config["admin"].get("token")
            start_lines = self.log_count(READY_LINE)
            args = [sys.executable, "-m", "pygate", "serve", "--config", str(self.config_path)]
            if self.watch:
                args.append("--watch")
            self.proc = spawn(args, self.log_path, cwd=self.workdir)

            def ready(start_lines: int = start_lines) -> bool:
                if self.proc.poll() is not None:
                    return True
                return self.log_count(READY_LINE) > start_lines

            wait_until(ready, timeout, what=f"'{READY_LINE}' in {self.log_path}")
            if self.proc.poll() is None:
                wait_until(self._admin_ready, timeout, what="admin /status")
                return self
            tail = self.log_text()[-3000:]
            # A free port picked a moment ago can be taken meanwhile: try new ones.
            if "in use" not in tail.lower() or not self._auto_ports or attempt == 2:
                raise RuntimeError(
                    f"gateway exited with {self.proc.returncode} before serving:\n{tail}"
                )
        raise AssertionError("unreachable")

    @property
    def admin_token(self) -> str | None:
        """The token this gateway's admin listener wants: admin.token, else the one it
        generated into its token file at first start (None with admin.auth: none)."""
        admin = self.config.get("admin", {})
        if admin.get("auth") == "none":
            return None
        if admin.get("token"):
            return admin["token"]
        if admin.get("tokens"):
            return admin["tokens"][0]["token"]
        state_dir = (self.workdir / admin.get("state", "pygate-admin.db")).parent
        token_file = (
            self.workdir / admin["token_file"]
            if admin.get("token_file")
            else state_dir / "pygate-admin.token"
        )
        try:
            return token_file.read_text().strip() or None
        except FileNotFoundError:
            return None

    def admin_headers(self) -> dict[str, str]:
        token = self.admin_token
        return {"Authorization": f"Bearer {token}"} if token else {}

    def admin_text(self, path: str) -> str:
        """GET an admin path (with the token) that answers text, e.g. /metrics."""
        req = urllib.request.Request(self.admin_url(path), headers=self.admin_headers())
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.read().decode()

    def _admin_ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"gateway exited:\n{self.log_text()[-3000:]}")
        status, _ = self.admin_get("/status")
        return status == 200

    def admin_get(self, path: str, token: str | None = "config") -> tuple[int, Any]:
        if token == "config":
            token = self.admin_token
        req = urllib.request.Request(self.admin_url(path))
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            body = err.read()
            try:
                return err.code, json.loads(body)
            except ValueError:
                return err.code, body

    def signal(self, sig: int) -> None:
        assert self.proc is not None and self.proc.poll() is None, "gateway is not running"
        self.proc.send_signal(sig)

    def reload(self, timeout: float = 60) -> str:
        """SIGHUP; wait for the gateway to log the outcome. Returns "reloaded" or "refused"."""
        ok, bad = self.log_count(RELOADED_LINE), self.log_count(REFUSED_LINE)
        self.signal(signal.SIGHUP)
        return self.wait_reload_outcome(ok, bad, timeout)

    def wait_reload_outcome(self, ok_before: int, bad_before: int, timeout: float = 60) -> str:
        def outcome() -> str | None:
            if self.log_count(RELOADED_LINE) > ok_before:
                return "reloaded"
            if self.log_count(REFUSED_LINE) > bad_before:
                return "refused"
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited:\n{self.log_text()[-3000:]}")
            return None

        return wait_until(outcome, timeout, what="reload outcome in the gateway log")

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM and wait; returns the exit code (SIGKILL after `timeout`, then raise)."""
        return stop_process(self.proc, "gateway", self.log_text, timeout)

    def kill(self) -> None:
        kill_process(self.proc)

    # ----- CLI against this gateway's config -------------------------------------
    def cli(self, *args: str, timeout: float = CLI_TIMEOUT):
        return run_cli(*args, "--config", str(self.config_path), timeout=timeout)

    def status(self) -> dict[str, Any]:
        res = self.cli("status", "--json")
        assert res.returncode == 0, f"pygate status failed: {res.stderr}"
        return json.loads(res.stdout)

    def logs_query(self, sql: str, fmt: str = "json"):
        """`pygate logs query --format FMT`; JSON output is parsed into a list of dicts."""
        res = run_cli("logs", "query", "--config", str(self.config_path), sql, "--format", fmt)
        assert res.returncode == 0, f"pygate logs query failed ({res.returncode}): {res.stderr}"
        return json.loads(res.stdout) if fmt == "json" else res.stdout

    def records(self, request_ids: list[str], timeout: float = 60) -> dict[str, dict]:
        """Wait until the log store has a record for every id; return them by id."""
        quoted = ", ".join("'" + rid.replace("'", "") + "'" for rid in request_ids)
        sql = f"SELECT * FROM pygate.requests WHERE request_id IN ({quoted}) ORDER BY ts"
        found: dict[str, dict] = {}

        def all_there() -> bool:
            found.clear()
            for row in self.logs_query(sql):
                found[row["request_id"]] = row
            return set(request_ids) <= set(found)

        try:
            wait_until(all_there, timeout, interval=0.3, what="records in the log store")
        except TimeoutError as err:
            missing = sorted(set(request_ids) - set(found))
            raise AssertionError(f"records missing from the store: {missing}") from err
        return found


def wait_exit(proc: subprocess.Popen, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return proc.poll()
