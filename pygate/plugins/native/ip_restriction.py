"""ip-restriction: allow or deny callers by address or CIDR block (runs in the core).

A `deny` entry wins over an `allow` entry; a non-empty `allow` list refuses every other
address. Refused calls get 403 JSON (`ip_forbidden`) before authentication runs.
"""

from __future__ import annotations

from typing import Any

import msgspec

from pygate.plugins.registry import NativePlugin, register


class IpRestrictionConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    allow: list[str] = []
    deny: list[str] = []


def to_core(config: IpRestrictionConfig) -> dict[str, Any]:
    return {"allow": list(config.allow), "deny": list(config.deny)}


# The entries are checked by the core, which parses them
# (core-rs/src/plugins/ip_restriction.rs).
PLUGIN = register(
    NativePlugin(
        name="ip-restriction",
        kind="guard",
        schema=IpRestrictionConfig,
        to_core=to_core,
    )
)
