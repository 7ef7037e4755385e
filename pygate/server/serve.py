"""`pygate serve`: run the core, the log shipper and the admin listener on uvloop.

Start order: log store (so records have somewhere to go), core listener, shipper,
admin. Stop order on SIGTERM/SIGINT: the core stops accepting and finishes in-flight
requests (up to shutdown_grace), the admin listener closes, the shipper drains and
flushes every remaining record, and the store is closed. Exit code 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from typing import Any

from pygate.ai.lifecycle import AiRuntime
from pygate.config import ConfigError, LoadedConfig, load_config
from pygate.config.listeners import listener_urls
from pygate.config.upstream_checks import unverified_upstreams
from pygate.core import CoreUnavailable, load_core
from pygate.logd.client import LogdStore
from pygate.logd.supervisor import LogdSupervisor
from pygate.logstore import LogStore, LogStoreError, StoreUnavailable, open_store
from pygate.logstore.shipper import (
    LogShipper,
    ShipperSettings,
    build_log_shipper,
    spool_directory,
)
from pygate.logstore.spool import SpoolError
from pygate.plugins.native.jwks_refresh import refresh_jwks_forever
from pygate.plugins.python.runtime import PluginRuntime
from pygate.server.admin_api.service import AdminService
from pygate.server.admin_api.statedb import AdminStateError
from pygate.server.admin_listener import AdminState, start_admin
from pygate.server.admin_token import AdminCredentials, AdminTokenError, server_credentials
from pygate.server.reload import Reloader, ReloadRefused, file_signature, watch_file

log = logging.getLogger("pygate")


def setup_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("pygate: %(message)s"))
    root = logging.getLogger("pygate")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False


def serve(config_file: str, *, watch: bool = False) -> int:
    setup_logging()
    try:
        loaded = load_config(config_file)
        # The entities to serve: the admin API's state, or the file's if they changed.
        admin_api = AdminService.open(loaded)
        loaded, persist_entities = admin_api.resolve(loaded)
    except ConfigError as exc:
        print("\n".join(exc.lines()), file=sys.stderr)
        return 2
    except AdminStateError as exc:
        log.error("%s", exc)
        return 1
    try:
        credentials = server_credentials(loaded)
    except AdminTokenError as exc:
        log.error("%s", exc)
        return 1
    try:
        core = load_core()
    except CoreUnavailable as exc:
        log.error("%s", exc)
        return 1
    try:
        ai = AiRuntime.bind(loaded)  # the AI listener's port goes into the core's config
    except OSError as exc:
        log.error("cannot listen on %s (ai): %s", loaded.config.ai.listen, exc.strerror or exc)
        return 1
    try:
        gateway = core.Gateway(_core_json(loaded, ai))
    except ValueError as exc:
        print("\n".join(loaded.core_error(exc).lines()), file=sys.stderr)
        return 2
    try:
        plugins = PluginRuntime(gateway, loaded)
    except ConfigError as exc:
        print("\n".join(exc.lines()), file=sys.stderr)
        return 2
    warn_unverified_upstreams(loaded)

    try:
        if persist_entities is not None:
            persist_entities()
    except AdminStateError as exc:
        log.error("%s", exc)
        return 1

    import uvloop

    server = _Server(loaded, gateway, plugins, ai, watch=watch)
    server.admin_api = admin_api
    server.credentials = credentials
    return uvloop.run(server.run())


def _core_json(loaded: LoadedConfig, ai: AiRuntime | None) -> str:
    """The core config for `loaded`, its AI routes pointing at the bound AI listener."""
    return loaded.core_json(ai.listener if ai is not None else None)


def warn_unverified_upstreams(loaded: LoadedConfig) -> None:
    """Said at every load that serves: an opt-out of verification must not go unnoticed."""
    for name in unverified_upstreams(loaded.config):
        log.warning(
            'upstream "%s": tls_verify is false; its TLS certificates are not verified', name
        )


def shipper_settings(loaded: LoadedConfig) -> ShipperSettings:
    log_settings = loaded.config.log
    return ShipperSettings(
        batch_size=log_settings.batch_size,
        flush_interval_s=log_settings.flush_interval / 1000,
    )


class _Server:
    def __init__(
        self,
        loaded: LoadedConfig,
        gateway: Any,
        plugins: PluginRuntime,
        ai: AiRuntime | None,
        *,
        watch: bool,
    ) -> None:
        self.loaded = loaded
        self.gateway = gateway
        self.plugins = plugins
        self.ai = ai  # the AI gateway (None without an `ai:` section)
        self.watch = watch
        self.stopping = asyncio.Event()
        self.store: LogStore | None = None
        self.logd: LogdSupervisor | None = None
        self.admin_api: AdminService | None = None
        self.credentials = AdminCredentials(None)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        config = self.loaded.config
        try:
            self.store = await loop.run_in_executor(None, self._open_store)
        except LogStoreError as exc:
            log.error("log store: %s", exc)
            return 1
        try:
            shipper = build_log_shipper(self.loaded, self.gateway, self.store)
        except SpoolError as exc:
            log.error("%s", exc)
            self.store.close()
            self._stop_logd()
            return 1
        try:
            self.gateway.start()
        except OSError as exc:
            addrs = ", ".join(listener_urls(config))
            log.error("cannot listen on %s: %s", addrs, exc.strerror or exc)
            shipper.stop()
            self.store.close()
            self._stop_logd()
            return 1

        self.plugins.start()
        shipper.start()
        if self.ai is not None:
            await self.ai.start(self.store, spool_directory(self.loaded))
        admin = AdminState(
            core=self.gateway,
            shipper=shipper,
            store=self.store,
            config_file=self.loaded.abspath,
            token=None,
            store_url=self.loaded.store.url,
            allowed_hosts=list(config.admin.allowed_hosts),
            api=self.admin_api,
            more_counters=self._ai_counters,
            listeners=listener_urls(config, list(self.gateway.local_addrs)),
        )
        try:
            runner, admin_addr = await start_admin(admin, config.admin.listen)
        except OSError as exc:
            log.error("cannot listen on %s (admin): %s", config.admin.listen, exc.strerror or exc)
            await self._stop_core(loop)
            await self.plugins.stop(grace_s=1)
            await loop.run_in_executor(None, shipper.stop)
            self.store.close()
            self._stop_logd()
            return 1

        admin.use_credentials(self.credentials)
        if self.credentials.generated_now:
            _announce_generated_token(self.loaded, self.credentials.token or "", admin_addr)
        reloader = Reloader(
            self.loaded,
            swap_into_core=self._swap_config,
            apply_python_side=lambda new: self._apply(new, shipper, admin),
            on_refused=admin.count_refused_reload,
            resolve=self.admin_api.resolve if self.admin_api else None,
        )
        if self.admin_api is not None:
            self.admin_api.attach(reloader, self.store)
        self._install_signals(loop, reloader)
        watcher = None
        if self.watch:
            # The signature now, not when the task first runs (after "serving on").
            since = file_signature(self.loaded.file)
            watcher = asyncio.create_task(
                watch_file(self.loaded.file, lambda: reloader.reload("file changed"), since)
            )
        jwks_refresher = asyncio.create_task(refresh_jwks_forever(reloader, self._reload_core))
        addrs = ", ".join(listener_urls(self.loaded.config, list(self.gateway.local_addrs)))
        log.info("serving on %s (admin %s)", addrs, admin_addr)
        await self.stopping.wait()

        log.info("shutting down (grace %.1fs)", self.loaded.config.shutdown_grace / 1000)
        admin.draining = True  # /readyz: 503 from now on, so the balancer stops sending
        if watcher is not None:
            watcher.cancel()
        jwks_refresher.cancel()
        finished = await self._stop_core(loop)
        if not finished:
            log.warning("grace period over; requests still in flight were cut off")
        await self.plugins.stop(grace_s=self.loaded.config.plugin_timeout / 1000)
        await runner.cleanup()
        if self.admin_api is not None:
            await self.admin_api.close()
        if self.ai is not None:
            await self.ai.stop()
        await loop.run_in_executor(None, shipper.stop)
        self.store.close()
        if self.logd is not None:
            await loop.run_in_executor(None, self.logd.stop)
        stats = self.gateway.stats()
        # requests_total is /status's count: the last one this process will ever give.
        log.info(
            "stopped (%d requests served, %d log rows written, %d dropped by the core)",
            stats.get("requests_total", 0),
            shipper.rows_written,
            stats.get("records_dropped", 0),
        )
        return 0

    def _open_store(self) -> LogStore:
        daemon = self.loaded.config.log.daemon
        if daemon.enabled:
            # logd owns the store; this process never opens chDB (see pygate/logd).
            if not daemon.spawn:
                return LogdStore(self.loaded)
            self.logd = LogdSupervisor(self.loaded)
            try:
                self.logd.start()
            except (RuntimeError, OSError) as exc:
                self.logd.stop()
                raise LogStoreError(str(exc)) from exc
            return self.logd.store
        store = open_store(self.loaded.store, retention_days=self.loaded.config.log.retention_days)
        try:
            applied = store.migrate()
        except StoreUnavailable as exc:
            if not self.loaded.store.is_server:
                store.close()
                raise
            # A server may be down now: serve anyway, spool, migrate once it answers.
            log.warning("log store %s: %s; records spool until it answers", store.description, exc)
            return store
        except BaseException:
            store.close()
            raise
        if applied:
            log.info("log store %s: applied migrations %s", store.description, applied)
        return store

    async def _stop_core(self, loop: asyncio.AbstractEventLoop) -> bool:
        # shutdown() blocks (with the GIL released) until in-flight requests finish.
        grace_ms = int(self.loaded.config.shutdown_grace)
        return await loop.run_in_executor(None, self.gateway.shutdown, grace_ms)

    def _reload_core(self, loaded: LoadedConfig) -> None:
        """Compile `loaded` and swap it into the core (blocking; raises ValueError)."""
        self.gateway.reload(_core_json(loaded, self.ai))

    def _swap_config(self, new: LoadedConfig) -> None:
        """Switch the plugin chains and the core to `new` (on a reload thread)."""
        try:
            self.plugins.swap(new, self._reload_core)
        except ConfigError as exc:
            raise ReloadRefused("; ".join(str(p) for p in exc.problems)) from exc

    def _apply(self, new: LoadedConfig, shipper: LogShipper, admin: AdminState) -> None:
        """Python-side settings of a reloaded config (the core already has its part)."""
        old_days = self.loaded.config.log.retention_days
        self.loaded = new
        warn_unverified_upstreams(new)
        shipper.update_settings(shipper_settings(new))
        try:
            credentials = server_credentials(new)
        except AdminTokenError as exc:
            log.warning("admin token: %s; the admin listener keeps its tokens", exc)
        else:
            admin.use_credentials(credentials)
            if credentials.generated_now:
                _announce_generated_token(new, credentials.token or "", admin.bound)
        admin.set_allowed_hosts(list(new.config.admin.allowed_hosts))
        if self.ai is not None:
            self.ai.reload(new)
        if new.config.log.retention_days != old_days and self.store is not None:
            asyncio.get_running_loop().run_in_executor(None, self._set_retention, new)

    def _ai_counters(self) -> dict[str, Any]:
        """The AI gateway's counters (call log shipper, provider auth failures), prefixed
        ai_ (empty without an `ai:` section)."""
        counters: dict[str, Any] = self.logd.counters() if self.logd is not None else {}
        if self.ai is not None:
            counters.update({f"ai_{name}": value for name, value in self.ai.counters().items()})
        return counters

    def _stop_logd(self) -> None:
        if self.logd is not None:
            self.logd.stop()

    def _set_retention(self, new: LoadedConfig) -> None:
        try:
            if self.store is not None:
                self.store.set_retention(new.config.log.retention_days)
        except LogStoreError as exc:
            log.warning("could not change log retention: %s", exc)

    def _install_signals(self, loop: asyncio.AbstractEventLoop, reloader: Reloader) -> None:
        def stop(signame: str) -> None:
            if self.stopping.is_set():
                log.info("%s: already shutting down", signame)
            self.stopping.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop, sig.name)
        loop.add_signal_handler(
            signal.SIGHUP, lambda: asyncio.ensure_future(reloader.reload("SIGHUP"))
        )


def _announce_generated_token(loaded: LoadedConfig, token: str, admin_addr: str) -> None:
    """Shown once, at the start that made the token; later starts only read the file."""
    from pygate.cli.admin_client import admin_url
    from pygate.server.admin_token import token_file_path

    path = token_file_path(loaded)
    print(
        f"pygate: no admin token configured: generated one, stored in {path} (mode 0600)\n"
        f"pygate: admin token (shown once): {token}\n"
        f"pygate: dashboard: {admin_url(admin_addr, '/dashboard')}#token={token}",
        file=sys.stderr,
        flush=True,
    )
