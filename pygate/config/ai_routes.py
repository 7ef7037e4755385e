"""What the `ai:` section adds to the core's config: an upstream and routes.

The core answers the AI paths like any route (key-auth, rate limits, the call record)
and proxies them to the AI listener in this process. Names start with `pygate-ai` so
they are recognisable in pygate.requests.

Where that listener is, and the secret the core adds to what it sends there, are known
only to `pygate serve` once it has bound the socket (pygate.ai.lifecycle): serve passes
them in as an `AiListener`. A process that only checks a config has none and compiles
with the configured address (a fixed stand-in port when it is 0) and a stand-in
secret, which is enough for the core to validate the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pygate.config.schema import GatewayConfig, Route, Upstream
from pygate.config.units import Duration, Name, RoutePath, TargetAddr

if TYPE_CHECKING:
    from pygate.config.ai_schema import AiSettings

UPSTREAM_NAME = "pygate-ai"
API_PATHS = (
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/models",
    "/v1/models/*",  # GET /v1/models/{model}: the SDKs' models.retrieve (model may hold '/')
    "/v1/messages",
)
MCP_PATH = "/mcp"
# The header the core adds to what the AI routes send (read by pygate.ai.guard).
SECRET_HEADER = "X-Pygate-Internal"
_CHECK_ONLY_PORT = 9
_CHECK_ONLY_SECRET = "check-only"


@dataclass(frozen=True, slots=True)
class AiListener:
    """The bound AI listener, as the core must reach it."""

    address: str  # host:port, or [v6]:port
    secret: str  # sent in SECRET_HEADER; the listener refuses requests without it


def ai_upstreams(config: GatewayConfig, listener: AiListener | None = None) -> list[Upstream]:
    settings: AiSettings | None = config.ai
    if settings is None:
        return []
    return [
        Upstream(
            name=Name(UPSTREAM_NAME),
            targets=[TargetAddr(_target(settings, listener))],
            read_timeout=Duration(int(settings.read_timeout)),
            connect_timeout=Duration(1_000),
            # The listener is in this process: never eject it, never retry elsewhere.
            retries=0,
            max_fails=1_000_000,
            fail_cooldown=Duration(1),
        )
    ]


def _target(settings: AiSettings, listener: AiListener | None) -> str:
    if listener is not None:
        return listener.address
    host, _, port = settings.listen.rpartition(":")
    return f"{host}:{port if port != '0' else _CHECK_ONLY_PORT}"


def ai_routes(config: GatewayConfig) -> list[Route]:
    settings: AiSettings | None = config.ai
    if settings is None:
        return []
    routes = [_route("pygate-ai-api", list(API_PATHS), settings, hide_key=True)]
    for template in settings.templates:
        routes.append(
            _route(f"pygate-ai-template-{template.name}", [template.path], settings, True)
        )
    if settings.mcp is not None:
        # The key stays on the request: MCP route tools call those routes with it.
        routes.append(_route("pygate-ai-mcp", [MCP_PATH], settings, hide_key=False))
    return routes


def _route(name: str, paths: list[str], settings: AiSettings, hide_key: bool) -> Route:
    plugins = {}
    if settings.require_key:
        from pygate.plugins.native.key_auth import KeyAuthConfig

        plugins["key-auth"] = KeyAuthConfig(hide_credentials=hide_key)
    return Route(
        name=Name(name),
        paths=[RoutePath(p) for p in paths],
        upstream=UPSTREAM_NAME,
        plugins=plugins,
    )


def with_ai_secret(compiled_routes: list[dict], listener: AiListener | None = None) -> list[dict]:
    """Have the core add the listener's secret header to what the AI routes send, so the
    AI listener can refuse anything that did not come through the core (guard.py)."""
    secret = listener.secret if listener is not None else _CHECK_ONLY_SECRET
    for route in compiled_routes:
        if route["upstream"] == UPSTREAM_NAME:
            route["inject_headers"] = [[SECRET_HEADER, secret]]
    return compiled_routes
