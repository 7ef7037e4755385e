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

# The config file as read -> the config to serve, plus what to persist once the core
# took it (the admin API's entity state, see pygate.server.admin_api); raises ConfigError.
Resolve = Callable[[LoadedConfig], tuple[LoadedConfig, Callable[[], None] | None]]

log = logging.getLogger("pygate")

# Settings that are bound to resources opened at start.
_RESTART_ONLY = {
    "admin.listen": lambda loaded: loaded.config.admin.listen,
    "log.store": lambda loaded: loaded.store.path,
    "admin.state": lambda loaded: loaded.config.admin.state,
    # The AI listener is bound at start: adding or removing `ai:` or moving it needs one.
    "ai.listen": lambda loaded: loaded.config.ai.listen if loaded.config.ai else None,
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
        resolve: Resolve | None = None,
    ) -> None:
        self.current = current
        self._swap_into_core = swap_into_core
        self._apply_python_side = apply_python_side
        self._on_refused = on_refused
        self._resolve = resolve
        self._lock = asyncio.Lock()

    @property
    def lock(self) -> asyncio.Lock:
        """Held while a config is prepared and swapped in; admin API writes take it too."""
        return self._lock

    async def install(self, loaded: LoadedConfig, persist: Callable[[], None]) -> None:
        """Serve `loaded`, already validated, then `persist` it. The caller holds `lock`.

        Raises ValueError if the core refuses it, or what `persist` raises (the old
        config is back in the core then).
        """
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._swap, loaded, persist)
        self._apply_python_side(loaded)
        self.current = loaded

    def _swap(self, loaded: LoadedConfig, persist: Callable[[], None] | None) -> None:
        self._swap_into_core(loaded)
        if persist is None:
            return
        try:
            persist()
        except BaseException:
            self._swap_into_core(self.current)
            raise

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
        persist = None
        try:
            loaded = load_config(self.current.file)
            if self._resolve is not None:
                loaded, persist = self._resolve(loaded)
        except ConfigError as exc:
            raise ReloadRefused("; ".join(str(p) for p in exc.problems)) from exc
        changed = [name for name, get in _RESTART_ONLY.items() if get(loaded) != get(self.current)]
        if changed:
            raise ReloadRefused(f"{', '.join(changed)}: changing it needs a restart")
        try:
            self._swap(loaded, persist)
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
