"""The admin listener's gatekeepers, in the order a request meets them.

1. `browser_guard`: Host and Origin must be the listener's own (pygate.server.browser_guard):
   no page on another site, and no DNS-rebound name, gets an answer or makes a change.
2. `bearer_token`: `Authorization: Bearer <token>` unless `admin.auth: none`. The
   dashboard page (static: it holds no data) and the probes /healthz and /readyz (fixed
   words only, pygate.server.health) are the paths served without it.
3. `expected_gateway`: a CLI command names the config (and log store) it was given in
   `Pygate-Expect-Config` / `Pygate-Expect-Store`; a gateway serving another config
   refuses with 409 instead of acting for it (two gateways, one admin port).
4. `body_type`: a body is JSON (or YAML for `POST /config`), never a type an HTML form
   can send; 415 otherwise.

Every refusal is a JSON object `{"error": "<code>", "message": "..."}`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from pygate.server.admin_api.http_common import ACTOR_KEY
from pygate.server.browser_guard import (
    JSON_TYPES,
    YAML_TYPES,
    body_type_problem,
    fetch_site_problem,
)
from pygate.server.dashboard import DASHBOARD_PATH
from pygate.server.gateway_identity import wrong_gateway
from pygate.server.health import PROBE_PATHS

if TYPE_CHECKING:
    from pygate.server.admin_listener import AdminState

STATE = web.AppKey("state", Any)  # the AdminState (typed Any: admin.py imports us)
# Where an imported document may be YAML; everywhere else a body is JSON.
_YAML_PATHS = {("POST", "/config")}
_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def refusal(status: int, error: str, message: str, **kwargs: Any) -> web.Response:
    return web.Response(
        body=orjson.dumps({"error": error, "message": message}),
        status=status,
        content_type="application/json",
        **kwargs,
    )


@web.middleware
async def browser_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    state: AdminState = request.app[STATE]
    hosts = request.headers.getall("Host", [])
    if len(hosts) != 1 or state.site is None or not state.site.host_allowed(hosts[0]):
        shown = hosts[0] if len(hosts) == 1 else f"{len(hosts)} Host headers"
        return refusal(
            403,
            "forbidden_host",
            f"Host {shown!r} is not this admin listener's address; other names are "
            "refused (DNS rebinding): add it to admin.allowed_hosts if it is yours",
        )
    problem = state.site.origin_problem(request.headers.getall("Origin", []), hosts[0])
    problem = problem or fetch_site_problem(request.headers.get("Sec-Fetch-Site"))
    if problem is not None:
        return refusal(403, "forbidden_origin", f"{problem}: cross-site requests are refused")
    return await handler(request)


@web.middleware
async def expected_gateway(request: web.Request, handler: Handler) -> web.StreamResponse:
    state: AdminState = request.app[STATE]
    problem = wrong_gateway(request.headers, state.config_file, state.store_url)
    if problem is not None:
        return refusal(409, "wrong_gateway", problem)
    return await handler(request)


@web.middleware
async def bearer_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    state: AdminState = request.app[STATE]
    request[ACTOR_KEY] = "anonymous"
    public = request.method == "GET" and (
        request.path == DASHBOARD_PATH or request.path in PROBE_PATHS
    )
    if not state.auth_required or public:
        return await handler(request)
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    actor = state.actor_for(presented) if scheme.lower() == "bearer" else None
    if actor is None:
        return refusal(
            401,
            "unauthorized",
            "missing or wrong admin token (Authorization: Bearer <token>)",
            headers={"WWW-Authenticate": 'Bearer realm="pygate-admin"'},
        )
    request[ACTOR_KEY] = actor
    return await handler(request)


@web.middleware
async def body_type(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method in _BODY_METHODS or request.body_exists:
        accepted = JSON_TYPES
        if (request.method, request.path) in _YAML_PATHS:
            accepted = JSON_TYPES | YAML_TYPES
        content_types = request.headers.getall("Content-Type", [])
        problem = (
            "several Content-Type headers"
            if len(content_types) > 1
            else body_type_problem(
                content_types[0] if content_types else None, request.body_exists, accepted
            )
        )
        if problem is not None:
            return refusal(415, "unsupported_media_type", problem)
    return await handler(request)


MIDDLEWARES = (browser_guard, bearer_token, expected_gateway, body_type)
