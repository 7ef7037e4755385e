"""msgspec models of the admin API's own bodies (the entities are the config's)."""

from __future__ import annotations

from typing import Any

import msgspec


class Problem(msgspec.Struct, kw_only=True):
    path: str  # field path in the entity document, e.g. "routes[2].paths[0]"
    message: str


class Error(msgspec.Struct, kw_only=True):
    # invalid | not_found | conflict | unavailable | unauthorized | forbidden_host |
    # forbidden_origin | wrong_gateway | unsupported_media_type | bad_request | ...
    error: str
    message: str | None = None
    problems: list[Problem] | None = None


class KeyBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    key: str | None = None  # omitted: the gateway makes up a random key


class CreatedKey(msgspec.Struct, kw_only=True):
    fingerprint: str  # "sha256:<12 hex>": how reads show the key
    key: str | None = None  # only for a key the gateway made up: shown this once


class PluginInfo(msgspec.Struct, kw_only=True):
    name: str
    kind: str  # native (runs in the Rust core) | python
    phases: list[str]  # python plugins: access, response, log
    config_schema: dict[str, Any] = msgspec.field(name="schema")


class PluginList(msgspec.Struct, kw_only=True):
    data: list[PluginInfo]


class AuditEntry(msgspec.Struct, kw_only=True):
    ts: str  # ISO 8601, UTC
    seq: int
    change_id: str
    actor: str
    client: str
    action: str  # create | update | delete
    entity_kind: str  # upstream | route | consumer
    entity_name: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    request: str


class AuditPage(msgspec.Struct, kw_only=True):
    data: list[AuditEntry]
    pending: int  # rows still waiting for the log store (not in `data` yet)
