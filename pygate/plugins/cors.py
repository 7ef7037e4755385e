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
from pygate.plugins.registry import BuiltinPlugin, RouteContext, register


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


def check(config: CorsConfig, context: RouteContext) -> Iterable[tuple[tuple, str]]:
    if not config.allow_origins:
        yield ("allow_origins",), 'expected at least one origin (or "*")'
    for i, origin in enumerate(config.allow_origins):
        scheme_ok = origin.startswith(("http://", "https://"))
        if origin != "*" and (not scheme_ok or origin.endswith("/")):
            yield (
                ("allow_origins", i),
                (f'expected "*" or scheme://host[:port] without a path, got "{origin}"'),
            )
    methods = [str(m).upper() for m in context.route.methods]
    if methods and "OPTIONS" not in methods:
        yield (), "the route's methods must include OPTIONS for preflight requests to reach cors"


PLUGIN = register(
    BuiltinPlugin(
        name="cors",
        kind="guard",
        schema=CorsConfig,
        core_field="cors",
        to_core=to_core,
        checks=check,
    )
)
