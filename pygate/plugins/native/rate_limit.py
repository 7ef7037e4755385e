"""rate-limit: a token bucket per consumer, client IP or route.

`rate` tokens are added every `per`; the bucket holds up to `burst` tokens (default:
`rate`). Over the limit the core answers 429 with Retry-After; every response carries
the IETF draft's RateLimit-Policy / RateLimit fields and X-RateLimit-Limit/-Remaining/
-Reset, which agree (the limit is `burst`; see core-rs/src/plugins/rate_limit.rs).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal

import msgspec

from pygate.config.units import Duration
from pygate.plugins.registry import (
    NativePlugin,
    RouteContext,
    names_of_kind,
    register,
    route_has_kind,
)


class RateLimitConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    rate: Annotated[int, msgspec.Meta(ge=1)]
    per: Duration = Duration(1_000)
    burst: Annotated[int, msgspec.Meta(ge=1)] | None = None
    # "ip" is the default because it works on every route; "consumer" needs an auth plugin.
    by: Literal["consumer", "ip", "route"] = "ip"
    # cluster: one budget for all nodes on cluster.redis (README: "Cluster-wide limits").
    scope: Literal["local", "cluster"] = "local"


def to_core(config: RateLimitConfig) -> dict[str, Any]:
    return {
        "rate": config.rate,
        "per_ms": int(config.per),
        "burst": config.burst if config.burst is not None else config.rate,
        "by": config.by,
        "scope": config.scope,
    }


# A period > 0 is checked by the core (core-rs/src/plugins/rate_limit.rs).
def check(config: RateLimitConfig, context: RouteContext) -> Iterable[tuple[tuple, str]]:
    if config.by == "consumer" and not route_has_kind(context.route, "auth"):
        yield ("by",), f"limiting by consumer needs {names_of_kind('auth')} on the same route"


PLUGIN = register(
    NativePlugin(
        name="rate-limit",
        kind="limit",
        schema=RateLimitConfig,
        to_core=to_core,
        checks=check,
    )
)
