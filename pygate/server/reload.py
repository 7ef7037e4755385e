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


def file_signature(path: str) -> tuple[int, int, int] | None:
    """(mtime, size, inode) of `path`; None when it is missing."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


# A changed file must look the same for this long before it is read.
SETTLE_S = 0.1
# A writer that keeps changing the file this long is read anyway (its errors are reported).
SETTLE_MAX_S = 5.0


async def _settled(path: str, seen: tuple[int, int, int]) -> tuple[int, int, int] | None:
    """The signature once the file stopped changing; None while it is missing or empty.

    An editor (or `open(path, "w")`) that saves in place truncates the file first and
    writes it afterwards: a poll can land in between, and a writer descheduled on a busy
    host leaves the file empty for as long as it likes. An empty file is never a config
    (the loader refuses it), so it is taken for a save in progress, as a missing one is,
    instead of a reload refused for a file that is about to be complete.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_MAX_S
    while True:
        await asyncio.sleep(SETTLE_S)
        now = file_signature(path)
        if now is None or now[1] == 0:
            return None
        if now == seen or loop.time() >= deadline:
            return now
        seen = now


async def watch_file(
    path: str,
    on_change: Callable[[], object],
    since: tuple[int, int, int] | None = None,
) -> None:
    """Poll `path` and call `on_change` when it changes (mtime, size or inode).

    `since`: the signature the running config was read at, taken by the caller before it
    says it serves (the task only starts later: a write in between would be missed).

    Polling instead of inotify: it works the same on every platform, in containers
    with bind-mounted config maps (which swap a symlink) and on network filesystems.
    """
    last = since if since is not None else file_signature(path)
    while True:
        await asyncio.sleep(WATCH_INTERVAL_S)
        current = file_signature(path)
        if current is None or current == last:
            # A missing file is usually an editor's save in progress; wait for it.
            continue
        settled = await _settled(path, current)
        if settled is None:
            continue  # still missing or empty: `last` stays, the complete file is seen
        last = settled
        result = on_change()
        if asyncio.iscoroutine(result):
            await result
