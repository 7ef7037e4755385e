"""cors: cross-origin resource sharing for browser clients (runs in the core).

Preflight requests (OPTIONS with Origin and Access-Control-Request-Method) are answered
by the gateway with 204 and never reach the upstream; every other response of the route,
refusals included, carries Access-Control-Allow-Origin for allowed origins. With
`allow_credentials`, "*" is answered with the caller's own origin, as browsers require.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from pygate.config.units import Duration
from pygate.plugins.registry import NativePlugin, RouteContext, register


class CorsConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    allow_origins: list[str]
    allow_methods: list[str] = []  # empty: GET, HEAD, PUT, PATCH, POST, DELETE, OPTIONS
    allow_headers: list[str] = []  # empty: whatever the preflight asks for
    expose_headers: list[str] = []
    allow_credentials: bool = False
    max_age: Duration | None = None


def to_core(config: CorsConfig) -> dict[str, Any]:
    return {
        "allow_origins": list(config.allow_origins),
        "allow_methods": [m.upper() for m in config.allow_methods],
        "allow_headers": list(config.allow_headers),
        "expose_headers": list(config.expose_headers),
        "allow_credentials": config.allow_credentials,
        "max_age_s": None if config.max_age is None else int(config.max_age) // 1000,
    }


# The origins, methods and header names are checked by the core, which parses them
# (core-rs/src/plugins/cors.rs); this is what needs the route.
def check(_config: CorsConfig, context: RouteContext) -> Iterable[tuple[tuple, str]]:
    methods = [str(m).upper() for m in context.route.methods]
    if methods and "OPTIONS" not in methods:
        yield (), "the route's methods must include OPTIONS for preflight requests to reach cors"


PLUGIN = register(
    NativePlugin(
        name="cors",
        kind="guard",
        schema=CorsConfig,
        to_core=to_core,
        checks=check,
    )
)
