"""ip-restriction: allow or deny callers by address or CIDR block (runs in the core).

A `deny` entry wins over an `allow` entry; a non-empty `allow` list refuses every other
address. Refused calls get 403 JSON (`ip_forbidden`) before authentication runs.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

import msgspec

from pygate.plugins.registry import BuiltinPlugin, RouteContext, register


class IpRestrictionConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    allow: list[str] = []
    deny: list[str] = []


def to_core(config: IpRestrictionConfig) -> dict[str, Any]:
    return {"allow": list(config.allow), "deny": list(config.deny)}


def check(config: IpRestrictionConfig, _context: RouteContext) -> Iterable[tuple[tuple, str]]:
    if not config.allow and not config.deny:
        yield (), "expected at least one entry in allow or deny"
    for field in ("allow", "deny"):
        for i, entry in enumerate(getattr(config, field)):
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                yield (field, i), f'expected an IP address or CIDR block, got "{entry}"'


PLUGIN = register(
    BuiltinPlugin(
        name="ip-restriction",
        kind="guard",
        schema=IpRestrictionConfig,
        core_field="ip_restriction",
        to_core=to_core,
        checks=check,
    )
)
