"""key-auth: the caller presents a consumer key.

The core reads the key from the `apikey` or `x-api-key` header (the Anthropic SDK's) or
`Authorization: Bearer <key>` (the OpenAI SDK's),
answers 401 when it is missing or unknown, and passes the consumer's name upstream
as `X-Consumer-Username`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from pygate.plugins.registry import NativePlugin, RouteContext, register


class KeyAuthConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # Strip the key before proxying so upstreams never see consumer credentials; on by
    # default because a leaked key is worse than an upstream that cannot see it.
    hide_credentials: bool = True


def to_core(config: KeyAuthConfig) -> dict[str, Any]:
    return {"hide_credentials": config.hide_credentials}


# Python's alone (the core serves such a route fail-closed: every call refused), as
# ai_checks.py's for the AI routes' key-auth.
def check(_config: KeyAuthConfig, context: RouteContext) -> Iterable[tuple[tuple, str]]:
    if not any(c.keys for c in context.config.consumers):
        yield (), "key-auth needs at least one consumer with `keys`"


PLUGIN = register(
    NativePlugin(
        name="key-auth",
        kind="auth",
        schema=KeyAuthConfig,
        to_core=to_core,
        checks=check,
    )
)
