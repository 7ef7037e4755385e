"""mtls: the caller is the verified client certificate of its TLS connection.

A listener with `tls.client_auth: {ca: clients-ca.pem}` verifies client certificates in
the handshake (core-rs/src/tls/). On a route with `mtls: {}` the consumer is the
certificate's subject common name (else its whole subject), passed upstream as
`X-Consumer-Username` and usable by `rate-limit: {by: consumer}`. A call without a
verified certificate (plain HTTP, or `required: false` and none sent) gets 401.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from pygate.plugins.registry import NativePlugin, RouteContext, register


class MtlsConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


def to_core(_config: MtlsConfig) -> dict[str, Any]:
    return {}


def check(_config: MtlsConfig, context: RouteContext) -> Iterable[tuple[tuple, str]]:
    listeners = context.config.listeners
    if not any(lst.tls is not None and lst.tls.client_auth is not None for lst in listeners):
        yield (), "mtls needs a listener with tls.client_auth (client certificates to verify)"


PLUGIN = register(
    NativePlugin(
        name="mtls",
        kind="auth",
        schema=MtlsConfig,
        to_core=to_core,
        checks=check,
    )
)
