"""Starting and stopping the AI gateway inside `pygate serve` (called from serve.py).

    ai = AiRuntime.bind(loaded)          # before the core's config is compiled
    loaded.core_json(ai.listener)        # every core config serve compiles points there
    await ai.start(store, spool_dir)     # after the log store is open
    await ai.stop()                      # after the core has drained its requests

serve keeps the runtime on its server object; nothing here is process state.

A reload (`ai.reload`) swaps in providers, aliases, prices, limits (usage so far
is kept), templates and the cache settings. `ai.listen`, and adding or removing the
whole `ai:` section, need a restart.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
from typing import TYPE_CHECKING

from pygate.ai.address import bind_listener
from pygate.config.ai_routes import AiListener
from pygate.config.listeners import plain_listen
from pygate.logstore.base import LogStoreError

if TYPE_CHECKING:
    from pygate.ai.app import AiGateway
    from pygate.config import LoadedConfig
    from pygate.logstore.base import LogStore
    from pygate.logstore.shipper import LogShipper

log = logging.getLogger("pygate")


class AiRuntime:
    def __init__(self, loaded: LoadedConfig, sock: socket.socket, listener: AiListener) -> None:
        self.loaded = loaded
        self.sock = sock
        # Where the core reaches the listener, with the secret it must send (guard.py).
        self.listener = listener
        self.gateway: AiGateway | None = None
        self.shipper: LogShipper | None = None

    @classmethod
    def bind(cls, loaded: LoadedConfig) -> AiRuntime | None:
        """Bind the AI listener if the config has an `ai:` section. Raises OSError."""
        settings = loaded.config.ai
        if settings is None:
            return None
        sock, address = bind_listener(settings)
        return cls(loaded, sock, AiListener(address=address, secret=secrets.token_urlsafe(32)))

    async def start(self, store: LogStore, spool_dir: str) -> None:
        from pygate.ai.app import AiGateway
        from pygate.ai.calllog import build_ai_shipper

        settings = self.loaded.config.ai
        assert settings is not None
        config = self.loaded.config
        self.gateway = AiGateway(
            settings,
            self.sock,
            self.listener.secret,
            _loopback_url(plain_listen(config.listen, config.listeners)),
            int(config.limits.max_body_bytes),
        )
        log_settings = self.loaded.config.log
        self.shipper = build_ai_shipper(
            self.gateway.buffer,
            store,
            spool_dir,
            int(log_settings.spool_max_bytes),
            log_settings.flush_interval / 1000,
        )
        await self.gateway.start()
        self._share_limits()
        self.shipper.start()
        loop = asyncio.get_running_loop()
        sql = self.gateway.service.limits.seed_sql() if self.gateway.service else None
        if sql:
            try:
                result = await loop.run_in_executor(None, store.query_rows, sql)
                self.gateway.seed_limits(result.rows)
            except LogStoreError as exc:
                log.warning("AI budgets start from zero: cannot read pygate.ai_calls: %s", exc)
        host, port = self.sock.getsockname()[:2]
        log.info("AI gateway on internal listener %s:%s", host, port)

    def reload(self, loaded: LoadedConfig) -> None:
        """Called after a reload was swapped into the core."""
        self.loaded = loaded
        if self.gateway is not None and loaded.config.ai is not None:
            self.gateway.reload(loaded.config.ai)
            self._share_limits()

    def _share_limits(self) -> None:
        """Token limits and budgets on the cluster's Redis when `cluster.redis` is set."""
        service = self.gateway.service if self.gateway is not None else None
        if service is None:
            return
        cluster = self.loaded.config.cluster
        shared = service.limits.shared
        if shared is not None and shared.cluster == cluster:
            return
        from pygate.ai.shared_usage import SharedUsage

        service.limits.shared = SharedUsage(cluster) if cluster.redis is not None else None

    def counters(self) -> dict[str, int | str | None]:
        """For /status (prefixed ai_ there): the ai_calls shipper's and the engine's."""
        counters = self.shipper.counters() if self.shipper is not None else {}
        if self.gateway is not None:
            counters["provider_auth_failures"] = self.gateway.counters.provider_auth_failures
        return counters

    async def stop(self) -> None:
        if self.gateway is not None:
            await self.gateway.stop()
        if self.shipper is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.shipper.stop)


def _loopback_url(listen: str | None) -> str:
    """The gateway's own listener as seen from this process (a wildcard means loopback).
    None (TLS only): no route tools, which the config check made sure of."""
    if listen is None:
        return ""
    host, _, port = listen.rpartition(":")
    if host in ("0.0.0.0", "", "[::]"):
        host = "127.0.0.1"
    return f"http://{host}:{port}"
