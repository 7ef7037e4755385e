"""Starting, pinning, waiting for and stopping the processes of a benchmark run."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

# The proxy under test gets core 0 to itself; upstream and load generator share core 1.
PROXY_CORE = "0"
LOAD_CORE = "1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(
    cmd: list[str], core: str, log: Path, cwd: Path | None = None, env: dict | None = None
) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    out = open(log, "ab")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen(
        ["taskset", "-c", core, *cmd],
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
        env=env,
        start_new_session=True,
    )
    proc.log_path = log  # for wait_http's failure message
    return proc


def run_json(
    cmd: list[str], timeout: float, ok_returncodes: tuple[int, ...] = (0,), cwd: Path | None = None
) -> object:
    """Run a command that prints JSON (`pygate bench --json`, `pygate logs query`); parse it.

    A failed run is reported with the command's own stderr (a missing extension, a bad
    config), not as the JSON decode error its empty stdout would cause.
    """
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    failed = done.returncode not in ok_returncodes
    if not failed:
        try:
            return json.loads(done.stdout)
        except ValueError:
            failed = True
    shown = " ".join(cmd[cmd.index("-m") + 1 :] if "-m" in cmd else cmd)[:200]
    raise RuntimeError(
        f"`{shown}` failed (exit {done.returncode}):\n"
        f"{done.stderr[-4000:].strip() or done.stdout[-4000:].strip() or '(no output)'}"
    )


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 60) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)


def http_status(
    url: str, headers: dict[str, str] | None = None, data: bytes | None = None
) -> int | None:
    try:
        req = urllib.request.Request(url, headers=headers or {}, data=data)
        with urllib.request.urlopen(req, timeout=5) as resp:
            resp.read()
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return None


def wait_http(
    url: str,
    timeout: float = 120,
    headers: dict[str, str] | None = None,
    proc: subprocess.Popen | None = None,
) -> int:
    """Wait until `url` answers any HTTP status; return it. Fails at once if `proc` exits."""
    deadline = time.monotonic() + timeout
    while (status := http_status(url, headers)) is None:
        if proc is not None and proc.poll() is not None:
            log = getattr(proc, "log_path", None)
            tail = log.read_text()[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}:\n{tail}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer within {timeout}s")
        time.sleep(0.1)
    return status


def world_readable_dir(path: Path) -> Path:
    """nginx and HAProxy may drop privileges; their files must stay reachable."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o755)
    return path
