"""The admin listener (aiohttp): live counters and log queries for operators.

    GET  /status       core counters + shipper counters + uptime, as JSON
    POST /logs/query   {"sql": "...", "format": "json|table|csv"}
    GET  /logs/reports, /logs/report/{name}   canned reports (pygate.reports.http)
    GET  /dashboard    the reports as self-refreshing charts (pygate.server.dashboard)
    /upstreams, /routes, /consumers, /config, /audit, /plugins, /openapi.json
                       the admin API (pygate.server.admin_api)
    GET  /upstreams/{name}/health   its targets' health (pygate.server.upstream_health)
    GET  /healthz, /readyz   probes for orchestrators, no token (pygate.server.health)

Every request passes pygate.server.admin_guard first: its own Host and Origin only (no
cross-site requests, no DNS rebinding), the admin token (`Authorization: Bearer`,
unless `admin.auth: none`), the config the CLI expects, JSON (or YAML) bodies only.
The token's name ("admin" for `admin.token` and the generated one) is the actor in
the audit log. Errors are JSON objects `{"error": "...", "message": "..."}`.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from pygate import __version__
from pygate.logstore import LogStore, LogStoreError, QueryResult
from pygate.logstore.render import FORMATS, render
from pygate.logstore.shipper import LogShipper
from pygate.logstore.sql_guard import query_error_status
from pygate.reports.http import register as register_reports
from pygate.server.admin_api.routes import register as register_admin_api
from pygate.server.admin_guard import MIDDLEWARES, STATE
from pygate.server.admin_token import AdminCredentials
from pygate.server.browser_guard import SiteRules
from pygate.server.dashboard import register as register_dashboard
from pygate.server.health import register as register_health
from pygate.server.metrics import register as register_metrics
from pygate.server.upstream_health import STATUS_KEY as HEALTH_KEY
from pygate.server.upstream_health import register as register_upstream_health
from pygate.server.upstream_health import rows as health_rows

_STATE = STATE
_CONTENT_TYPES = {"json": "application/json", "csv": "text/csv", "table": "text/plain"}
# Queries run on a thread (chDB blocks); bound them so a runaway query cannot pile up.
_MAX_CONCURRENT_QUERIES = 4


@dataclass(slots=True)
class AdminState:
    core: Any  # pygate._core.Gateway
    shipper: LogShipper
    store: LogStore
    config_file: str
    token: str | None
    # The log store's location (without password): with config_file, who this gateway is.
    store_url: str = ""
    # False only with admin.auth: none; True with no token at all refuses everything.
    auth_required: bool = True
    allowed_hosts: list[str] = field(default_factory=list)
    # The address the listener is bound to, and the Hosts and Origins it answers to
    # (built from that address); set once it is bound.
    bound: str = ""
    site: SiteRules | None = None
    # admin.tokens as token -> name; the name is the actor recorded in the audit log.
    named_tokens: dict[str, str] = field(default_factory=dict)
    api: Any = None  # pygate.server.admin_api.service.AdminService: entity CRUD, when serving
    # More counters for /status and /metrics (the AI gateway's call-log shipper).
    more_counters: Callable[[], dict[str, Any]] | None = None
    # scheme://address of each gateway listener as bound (pygate status shows them).
    listeners: list[str] = field(default_factory=list)
    started_at: float = field(default_factory=time.monotonic)
    reloads_refused: int = 0
    draining: bool = False  # set when shutdown starts: /readyz turns 503 (pygate.server.health)
    query_slots: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(_MAX_CONCURRENT_QUERIES)
    )

    def use_credentials(self, credentials: AdminCredentials) -> None:
        self.token = credentials.token
        self.named_tokens = dict(credentials.named)
        self.auth_required = credentials.required

    def set_allowed_hosts(self, allowed_hosts: list[str]) -> None:
        self.allowed_hosts = allowed_hosts
        if self.bound:
            self.site = SiteRules.for_listener(self.bound, allowed_hosts)

    def actor_for(self, presented: str) -> str | None:
        """Who holds `presented` ("admin" for admin.token), or None if nobody does."""
        found = None
        candidates = [(self.token, "admin")] if self.token is not None else []
        for token, name in [*candidates, *self.named_tokens.items()]:
            # Compare with every token, so the time taken does not tell which one is close.
            if hmac.compare_digest(presented.strip().encode(), token.encode()) and found is None:
                found = name
        return found

    def count_refused_reload(self) -> None:
        self.reloads_refused += 1

    def status(self) -> dict[str, Any]:
        return {
            **self.core.stats(),
            **self.shipper.counters(),
            **(self.more_counters() if self.more_counters is not None else {}),
            "uptime_s": round(time.monotonic() - self.started_at, 3),
            "config_file": os.path.realpath(self.config_file),
            "listeners": self.listeners,
            "log_store": self.store_url,
            "reloads_refused": self.reloads_refused,
            "version": __version__,
            **(self.api.state_status() if self.api is not None else {}),
            HEALTH_KEY: health_rows(self.core),
        }


def json_response(body: Any, status: int = 200, **kwargs: Any) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", **kwargs
    )


def error_response(status: int, message: str, **kwargs: Any) -> web.Response:
    return json_response({"error": "bad_request", "message": message}, status=status, **kwargs)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        code = exc.reason.lower().replace(" ", "_")
        return json_response({"error": code, "message": exc.text or exc.reason},
                             status=exc.status, headers=headers)  # fmt: skip


async def _status(request: web.Request) -> web.Response:
    return json_response(request.app[_STATE].status())


async def _logs_query(request: web.Request) -> web.Response:
    state = request.app[_STATE]
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return error_response(400, 'expected a JSON body {"sql": "...", "format": "json"}')
    if not isinstance(body, dict) or not isinstance(body.get("sql"), str) or not body["sql"]:
        return error_response(400, 'expected a JSON body {"sql": "...", "format": "json"}')
    fmt = body.get("format", "json")
    if fmt not in FORMATS:
        return error_response(400, f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    try:
        result = await run_read_query(state, body["sql"])
    except LogStoreError as exc:  # 403 when the statement check refused it
        return error_response(query_error_status(exc), str(exc))
    if fmt == "json":
        return json_response({"columns": result.columns, "rows": result.rows})
    return web.Response(text=render(result, fmt), content_type=_CONTENT_TYPES[fmt])


_BENCH_REPORT_KEYS = {"url", "mode", "connections", "threads", "duration_s", "requests",
                      "requests_per_s"}  # fmt: skip


async def _save_bench_run(request: web.Request) -> web.Response:
    """`pygate bench --save` posts its report here while the gateway owns the store."""
    state = request.app[_STATE]
    try:
        report = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return error_response(400, "expected the JSON report of a pygate bench run")
    missing = _BENCH_REPORT_KEYS - set(report) if isinstance(report, dict) else _BENCH_REPORT_KEYS
    if missing:
        return error_response(400, f"not a pygate bench report: missing {sorted(missing)}")
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(None, state.store.insert_bench_run, report)
    except (LogStoreError, KeyError, TypeError, ValueError) as exc:
        return error_response(400, f"cannot save the bench run: {exc}")
    return json_response({"saved": True})


async def run_read_query(state: AdminState, sql: str) -> QueryResult:
    loop = asyncio.get_running_loop()
    async with state.query_slots:
        return await loop.run_in_executor(None, state.store.query_rows, sql)


def create_admin_app(state: AdminState) -> web.Application:
    app = web.Application(middlewares=[_json_errors, *MIDDLEWARES], client_max_size=1024**2)
    app[_STATE] = state
    app.router.add_get("/status", _status)
    app.router.add_post("/logs/query", _logs_query)
    app.router.add_post("/bench-runs", _save_bench_run)
    register_reports(app, functools.partial(run_read_query, state))
    register_dashboard(app)
    register_health(app, state)
    register_metrics(app, state.status, state.core)
    register_upstream_health(app, state.core)
    if state.api is not None:
        register_admin_api(app, state.api)
    return app


async def start_admin(state: AdminState, listen: str) -> tuple[web.AppRunner, str]:
    """Serve the admin app on `listen` (HOST:PORT); returns the runner and bound address."""
    host, _, port = listen.rpartition(":")
    runner = web.AppRunner(create_admin_app(state), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host.strip("[]"), int(port), reuse_address=True)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = listen
    server = getattr(site, "_server", None)
    if server is not None and server.sockets:
        sock_host, sock_port = server.sockets[0].getsockname()[:2]
        bound = f"[{sock_host}]:{sock_port}" if ":" in sock_host else f"{sock_host}:{sock_port}"
    state.bound = bound
    state.set_allowed_hosts(state.allowed_hosts)
    return runner, bound
