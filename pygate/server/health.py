"""Probes for orchestrators: `GET /healthz` (the process answers) and `GET /readyz`
(this node should get traffic), on the admin listener.

Both are served without the admin token (a Kubernetes or Docker probe cannot easily send
one) and say nothing an anonymous caller may not know: no config, no paths, no store URL,
no error text (which may hold a host name) -- only each check's name and a fixed word.
They still pass the Host/Origin guard (pygate.server.admin_guard), so a page on another
site cannot read them through a rebound DNS name.

`/readyz` runs READY_CHECKS, a plain list of functions `AdminState -> (ok, word)`; another
backend (the Postgres admin state, say) adds its own with `add_ready_check`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

import orjson
from aiohttp import web

if TYPE_CHECKING:
    from pygate.server.admin_listener import AdminState

HEALTHZ_PATH = "/healthz"
READYZ_PATH = "/readyz"
PROBE_PATHS = frozenset({HEALTHZ_PATH, READYZ_PATH})

ReadyCheck = Callable[["AdminState"], tuple[bool, str]]


def _config_loaded(state: AdminState) -> tuple[bool, str]:
    # The admin listener starts only after the config loaded into the core; a reload that
    # failed keeps the last good config, so this turns false only while shutting down.
    return (not state.draining, "loaded" if not state.draining else "shutting_down")


def _proxy_listening(state: AdminState) -> tuple[bool, str]:
    return (True, "listening") if state.core.local_addrs else (False, "not_listening")


def _log_store(state: AdminState) -> tuple[bool, str]:
    # Reachable, or not reachable but every record still lands in the spool: ready either
    # way (nothing is lost). Not ready when the shipper stopped or the spool is full.
    word = state.shipper.delivery_state()
    return (word in ("writing", "spooling"), word)


READY_CHECKS: dict[str, ReadyCheck] = {
    "config": _config_loaded,
    "proxy": _proxy_listening,
    "log_store": _log_store,
}


def add_ready_check(name: str, check: ReadyCheck) -> None:
    READY_CHECKS[name] = check


def readiness(state: AdminState) -> tuple[list[str], dict[str, str]]:
    """(the names of the checks that failed, each check's word)."""
    results: dict[str, str] = {}
    failing: list[str] = []
    for name, check in list(READY_CHECKS.items()):
        try:
            ok, word = check(state)
        except Exception:  # a broken check means "not ready", never a 500 with a traceback
            ok, word = False, "check_failed"
        results[name] = word
        if not ok:
            failing.append(name)
    return failing, results


def _json(body: object, status: int) -> web.Response:
    return web.Response(
        body=orjson.dumps(body),
        status=status,
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


async def _healthz(request: web.Request) -> web.Response:
    return _json({"status": "alive"}, 200)


async def _readyz(state: AdminState, request: web.Request) -> web.Response:
    failing, checks = readiness(state)
    if not failing:
        return _json({"status": "ready", "checks": checks}, 200)
    return _json({"status": "not_ready", "not_ready": failing, "checks": checks}, 503)


def register(app: web.Application, state: AdminState) -> None:
    app.router.add_get(HEALTHZ_PATH, _healthz)
    app.router.add_get(READYZ_PATH, functools.partial(_readyz, state))
