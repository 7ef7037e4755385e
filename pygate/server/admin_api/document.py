"""The entity document: upstreams, consumers and routes as the YAML file spells them.

Entities are kept in their user-facing form (what `GET /config` exports and what a
config file holds), not compiled: `{"name": "items", "targets": ["127.0.0.1:9001"],
"read_timeout": "5s"}`. `canonical` only drops the nulls the loader reads as "use
the default", so a stored entity always matches the published JSON schema.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import msgspec
import orjson

from pygate.config.convert import _admits_none
from pygate.config.paths import FieldPath
from pygate.config.schema import Consumer, Route, Upstream
from pygate.config.typed_copy import TypedCopy

# Section of the config file -> (singular name used in the audit log, schema).
KINDS: dict[str, tuple[str, type[msgspec.Struct]]] = {
    "upstreams": ("upstream", Upstream),
    "consumers": ("consumer", Consumer),
    "routes": ("route", Route),
}

Entities = dict[str, list[dict[str, Any]]]


def entities_of(data: Any) -> Entities:
    """The entity sections of parsed config data (missing or null: empty)."""
    data = data if isinstance(data, dict) else {}
    out: Entities = {}
    for section, (_, schema) in KINDS.items():
        items = data.get(section) or []
        out[section] = [canonical(copy.deepcopy(item), schema) for item in items]
    return out


def settings_of(data: Any) -> dict[str, Any]:
    """Parsed config data without its entity sections: the process settings."""
    data = data if isinstance(data, dict) else {}
    return {key: value for key, value in data.items() if key not in KINDS}


def merged(settings: dict[str, Any], entities: Entities) -> dict[str, Any]:
    return {**copy.deepcopy(settings), **copy.deepcopy(entities)}


def entities_hash(entities: Entities) -> str:
    """Fingerprint of the file's entities: when it changes, the file wins over the state."""
    text = orjson.dumps(entities, option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(text).hexdigest()


def find(entities: Entities, section: str, name: str) -> dict[str, Any] | None:
    for item in entities[section]:
        if item.get("name") == name:
            return item
    return None


def index_of(entities: Entities, section: str, name: str) -> int | None:
    for index, item in enumerate(entities[section]):
        if item.get("name") == name:
            return index
    return None


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge, null removes a key, the rest replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def canonical(raw: Any, kind: Any) -> Any:
    """`raw` (valid for `kind`) without the nulls that stand for a field's default."""
    return _Canonical().copy(raw, kind)


class _Canonical(TypedCopy):
    def keep_field(self, value: Any, info: msgspec.structs.FieldInfo) -> bool:
        return not (value is None and not info.required and not _admits_none(info.type))

    def plugin(self, name: str, config: Any, path: FieldPath) -> Any:
        # `key-auth:` with nothing after it means "with its defaults": an empty mapping.
        return super().plugin(name, {} if config is None else config, path)
