"""Config reloads while serving: triggered by SIGHUP or by the file watcher.

A reload re-reads and validates the whole file and then swaps it into the core in
one step. Anything that fails leaves the running config untouched: reloading must
never take down serving.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable

from pygate.config import ConfigError, LoadedConfig, load_config

log = logging.getLogger("pygate")

# Settings that are bound to resources opened at start.
_RESTART_ONLY = {
    "admin.listen": lambda loaded: loaded.config.admin.listen,
    "log.store": lambda loaded: loaded.store.path,
}

WATCH_INTERVAL_S = 0.5


class ReloadRefused(Exception):
    pass


class Reloader:
    def __init__(
        self,
        current: LoadedConfig,
        swap_into_core: Callable[[LoadedConfig], None],
        apply_python_side: Callable[[LoadedConfig], None],
        on_refused: Callable[[], None],
    ) -> None:
        self.current = current
        self._swap_into_core = swap_into_core
        self._apply_python_side = apply_python_side
        self._on_refused = on_refused
        self._lock = asyncio.Lock()

    async def reload(self, reason: str) -> bool:
        async with self._lock:  # two SIGHUPs in a row must not interleave
            loop = asyncio.get_running_loop()
            try:
                loaded = await loop.run_in_executor(None, self._prepare)
            except ReloadRefused as exc:
                self._on_refused()
                log.error("reload refused: %s", exc)
                return False
            self._apply_python_side(loaded)
            self.current = loaded
            log.info("reloaded config from %s (%s)", loaded.file, reason)
            return True

    def _prepare(self) -> LoadedConfig:
        """Load, validate and swap into the core; raises ReloadRefused. Runs on a thread."""
        try:
            loaded = load_config(self.current.file)
        except ConfigError as exc:
            raise ReloadRefused("; ".join(str(p) for p in exc.problems)) from exc
        changed = [name for name, get in _RESTART_ONLY.items() if get(loaded) != get(self.current)]
        if changed:
            raise ReloadRefused(f"{', '.join(changed)}: changing it needs a restart")
        try:
            self._swap_into_core(loaded)
        except ValueError as exc:
            error = loaded.core_error(exc)
            raise ReloadRefused("; ".join(str(p) for p in error.problems)) from exc
        return loaded


def _signature(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


async def watch_file(path: str, on_change: Callable[[], object]) -> None:
    """Poll `path` and call `on_change` when it changes (mtime, size or inode).

    Polling instead of inotify: it works the same on every platform, in containers
    with bind-mounted config maps (which swap a symlink) and on network filesystems.
    """
    last = _signature(path)
    while True:
        await asyncio.sleep(WATCH_INTERVAL_S)
        current = _signature(path)
        if current is None or current == last:
            # A missing file is usually an editor's save in progress; wait for it.
            continue
        # Give a writer that is still writing a moment to finish.
        await asyncio.sleep(0.1)
        current = _signature(path) or current
        last = current
        result = on_change()
        if asyncio.iscoroutine(result):
            await result
