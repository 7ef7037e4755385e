"""`pygate serve`'s side of logd: start it, restart it with backoff when it dies, and
stop it (SIGTERM) after the gateway's shipper has flushed.

While logd is down the gateway's shipper finds the store unavailable and spools;
the restarted logd gets the spool replayed in order, each batch with its token.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time

from pygate.config import LoadedConfig
from pygate.logd.client import LogdStore
from pygate.logd.server import PARENT_ENV

log = logging.getLogger("pygate.logd")

_FIRST_BACKOFF_S = 0.5
_MAX_BACKOFF_S = 10.0
# A logd that stayed up this long is healthy again: its next crash restarts fast.
_HEALTHY_AFTER_S = 30.0
_STOP_TIMEOUT_S = 60.0


class LogdSupervisor:
    def __init__(self, loaded: LoadedConfig) -> None:
        self.config_file = loaded.abspath
        self.store = LogdStore(loaded)
        self.process: subprocess.Popen | None = None
        self.restarts = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._watch, name="pygate-logd-supervisor", daemon=True
        )

    def start(self, wait_s: float = 120.0) -> None:
        """Start logd and wait until it answers (its store is open and migrated)."""
        self._spawn()
        deadline = time.monotonic() + wait_s
        while not self.store.ping():
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"logd exited with code {self.process.returncode} at start")
            if time.monotonic() > deadline:
                raise RuntimeError(f"logd did not answer on {self.store.path} in {wait_s:.0f}s")
            time.sleep(0.05)
        self._thread.start()

    def _spawn(self) -> None:
        command = [sys.executable, "-m", "pygate", "logd", "--config", self.config_file]
        # Its own session: a Ctrl-C in the terminal goes to serve, which stops logd last.
        env = {**os.environ, PARENT_ENV: str(os.getpid())}
        self.process = subprocess.Popen(command, start_new_session=True, env=env)
        log.info("logd started (pid %d)", self.process.pid)

    def _watch(self) -> None:
        backoff = _FIRST_BACKOFF_S
        while not self._stopping.is_set():
            process = self.process
            assert process is not None
            started = time.monotonic()
            while process.poll() is None:
                if self._stopping.wait(0.2):
                    return
            if self._stopping.is_set():
                return
            if time.monotonic() - started > _HEALTHY_AFTER_S:
                backoff = _FIRST_BACKOFF_S
            log.warning(
                "logd exited (code %s); restarting in %.1fs, batches spool meanwhile",
                process.returncode,
                backoff,
            )
            if self._stopping.wait(backoff):
                return
            backoff = min(backoff * 2, _MAX_BACKOFF_S)
            self.restarts += 1
            self._spawn()

    def stop(self) -> None:
        """SIGTERM logd (after the shipper flushed) and wait for it."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()
        self.store.close()
        process = self.process
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log.error("logd did not stop in %.0fs; killing it", _STOP_TIMEOUT_S)
            process.kill()
            process.wait()

    def counters(self) -> dict[str, int | bool]:
        process = self.process
        return {
            "logd_pid": process.pid if process is not None else 0,
            "logd_running": process is not None and process.poll() is None,
            "logd_restarts": self.restarts,
        }
