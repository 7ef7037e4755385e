"""basic-auth: the caller presents `Authorization: Basic base64(username:password)`.

Credentials belong to consumers (`consumers[].basic_auth: [{username, password}]`).
The core checks them (passwords compared in constant time), answers 401 with
`WWW-Authenticate: Basic` when they are missing or wrong, and passes the consumer's
name upstream as `X-Consumer-Username`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from pygate.plugins.registry import NativePlugin, RouteContext, register


class BasicAuthConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # Strip the Authorization header before proxying: upstreams never see passwords.
    hide_credentials: bool = True


def to_core(config: BasicAuthConfig) -> dict[str, Any]:
    return {"hide_credentials": config.hide_credentials}


def check(_config: BasicAuthConfig, context: RouteContext) -> Iterable[tuple[tuple, str]]:
    if not any(c.basic_auth for c in context.config.consumers):
        yield (), "basic-auth needs a consumer with `basic_auth` credentials"


PLUGIN = register(
    NativePlugin(
        name="basic-auth",
        kind="auth",
        schema=BasicAuthConfig,
        to_core=to_core,
        checks=check,
    )
)
