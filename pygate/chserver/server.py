"""`pygate logs serve`: open the store, serve it, stop cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from dataclasses import dataclass

from aiohttp import web

from pygate.chserver.app import ServerState, create_app
from pygate.chserver.auth import DEFAULT_USER, Authenticator, User
from pygate.config import ConfigError, LoadedConfig, load_config
from pygate.config.units import is_loopback_listen
from pygate.server.browser_guard import SiteRules

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2
READY_PREFIX = "pygate: logs serve on"
# Large enough for any insert batch a sink sends; a bound so a runaway upload
# cannot exhaust memory (the body is held while chDB ingests it).
MAX_BODY_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ServeOptions:
    config_file: str
    listen: str | None = None  # HOST:PORT; default log.serve.listen
    allow_writes: bool = False


def run_logs_serve(options: ServeOptions) -> int:
    _log_to_stderr()
    try:
        loaded = load_config(options.config_file)
        listen = options.listen or loaded.config.log.serve.listen
        users = configured_users(loaded, options.allow_writes, listen)
        SiteRules.for_listener(_placeholder_bound(listen), loaded.config.log.serve.allowed_hosts)
    except ConfigError as exc:
        print("\n".join(exc.lines()), file=sys.stderr)
        return EXIT_CONFIG
    except ValueError as exc:  # an allowed_hosts entry that is not a host name
        print(f"pygate: log.serve.allowed_hosts: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if loaded.store.scheme != "chdb":
        print(
            f"pygate: logs serve serves an embedded chDB store; log.store is "
            f"{loaded.config.log.store}",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    try:
        import uvloop

        return uvloop.run(_serve(loaded, listen, users))
    except KeyboardInterrupt:
        return EXIT_OK


def _log_to_stderr() -> None:
    # Unexpected failures inside a request are logged with their traceback (the
    # client gets a ClickHouse-style LOGICAL_ERROR); nothing is logged per request.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("pygate: %(message)s"))
    logger = logging.getLogger("pygate.chserver")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False


def configured_users(loaded: LoadedConfig, allow_writes_flag: bool, listen: str) -> list[User]:
    """The users of log.serve.users, each with a password. Serving without one takes
    `users: []` written out, and a loopback address: a forgotten list is an error."""
    serve = loaded.config.log.serve
    writes_default = allow_writes_flag or serve.allow_writes
    if serve.users is None:
        raise ConfigError(
            [
                loaded.source.problem(
                    ("log", "serve"),
                    "logs serve needs users with passwords: log.serve.users: "
                    '[{name: analyst, password: "${LOGS_PASSWORD}"}]; or users: [] for the '
                    "password-less user default on a loopback address",
                )
            ]
        )
    if not serve.users:
        if not is_loopback_listen(listen):
            raise ConfigError(
                [
                    loaded.source.problem(
                        ("log", "serve", "users"),
                        f"users: [] (no password) is allowed on a loopback address only, "
                        f"not {listen}",
                    )
                ]
            )
        print(
            "pygate: logs serve without a password (log.serve.users: []): anyone on this "
            "machine can query the call logs",
            file=sys.stderr,
        )
        return [User(DEFAULT_USER, "", writes_default)]
    seen: set[str] = set()
    problems = []
    users = []
    for index, entry in enumerate(serve.users):
        if entry.name in seen:
            path = ("log", "serve", "users", index, "name")
            problems.append(loaded.source.problem(path, f'duplicate user name "{entry.name}"'))
        if not entry.password:
            path = ("log", "serve", "users", index, "password")
            problems.append(loaded.source.problem(path, "a password is required"))
        seen.add(entry.name)
        may_write = writes_default if entry.allow_writes is None else entry.allow_writes
        users.append(User(entry.name, entry.password, may_write))
    if problems:
        raise ConfigError(problems)
    return users


def _placeholder_bound(listen: str) -> str:
    """`listen` with a port, for checking allowed_hosts before the socket is bound."""
    host, _, port = listen.rpartition(":")
    host = "127.0.0.1" if host == "localhost" else host
    return f"{host}:{port if port != '0' else '1'}"


async def _serve(loaded: LoadedConfig, listen: str, users: list[User]) -> int:
    from pygate.chserver.engine import ChdbEngine, StoreUnavailable
    from pygate.logd.client import WrongLogd

    writable = any(user.may_write for user in users)
    try:
        engine = await asyncio.to_thread(_through_logd, loaded)
    except WrongLogd as exc:
        print(f"pygate: logs serve --config {loaded.abspath}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if engine is None:
        # No logd owns the store: open it here (chDB's lock keeps anyone else out).
        if writable:
            try:
                await asyncio.to_thread(_migrate, loaded)
            except Exception as exc:  # noqa: BLE001 - reported to the operator, then exit
                print(f"pygate: {exc}", file=sys.stderr)
                return EXIT_FAILURE
        engine = ChdbEngine(loaded.store.path, writable=writable)
    try:
        info = engine.info or await asyncio.to_thread(engine.open)
    except StoreUnavailable as exc:
        print(f"pygate: {exc}", file=sys.stderr)
        await asyncio.to_thread(engine.close)
        return EXIT_FAILURE

    state = ServerState(
        engine=engine, info=info, auth=Authenticator(users), max_body_bytes=MAX_BODY_BYTES
    )
    # auto_decompress=False: request bodies are decoded by compression.py, which knows
    # ClickHouse's encodings (lz4, zstd, ...), not only those aiohttp knows.
    runner = web.AppRunner(
        create_app(state), access_log=None, handle_signals=False, auto_decompress=False
    )
    await runner.setup()
    host, _, port = listen.rpartition(":")
    site = web.TCPSite(runner, host.strip("[]"), int(port), reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        print(f"pygate: cannot listen on {listen}: {exc.strerror or exc}", file=sys.stderr)
        await runner.cleanup()
        await asyncio.to_thread(engine.close)
        return EXIT_FAILURE

    # Host and Origin follow the address actually bound (port 0 becomes a real one).
    state.site_rules = SiteRules.for_listener(
        _bound(site, listen), loaded.config.log.serve.allowed_hosts
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    mode = "writes allowed" if writable else "read-only"
    print(
        f"{READY_PREFIX} {_bound(site, listen)} ({engine.description}, {mode}, "
        f"ClickHouse {info.version})",
        file=sys.stderr,
        flush=True,
    )
    await stop.wait()
    await runner.cleanup()
    await asyncio.to_thread(engine.close)
    print("pygate: logs serve stopped", file=sys.stderr, flush=True)
    return EXIT_OK


def _through_logd(loaded: LoadedConfig):
    """A LogdEngine, opened, when a logd of this config answers (log.daemon.enabled):
    it owns the store, and statements run there. None when none answers.
    Raises WrongLogd when the socket is another store's."""
    if not loaded.config.log.daemon.enabled:
        return None
    from pygate.chserver.engine import StoreUnavailable
    from pygate.chserver.logd_engine import LogdEngine

    try:
        engine = LogdEngine(loaded)
    except OSError:  # a socket path too long: no logd can listen there either
        return None
    try:
        engine.open()
    except StoreUnavailable:
        engine.close()
        return None
    except BaseException:
        engine.close()
        raise
    return engine


def _migrate(loaded: LoadedConfig) -> None:
    # A writable server creates the documented schema, as the gateway does at start,
    # so clients can insert into pygate.requests on a fresh store. The store is
    # closed again before the server opens its own sessions.
    from pygate.logstore import LogStoreError, open_store

    try:
        with open_store(loaded.store, retention_days=loaded.config.log.retention_days) as store:
            store.migrate()
    except LogStoreError as exc:
        raise RuntimeError(str(exc)) from exc


def _bound(site: web.TCPSite, fallback: str) -> str:
    server = getattr(site, "_server", None)
    if server is None or not server.sockets:
        return fallback
    host, port = server.sockets[0].getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
