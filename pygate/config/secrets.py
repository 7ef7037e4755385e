"""Which config fields hold secrets, and a walk over them.

A field is a secret when its type is `Secret` (schema.py: consumer keys, basic-auth
passwords; plugins mark theirs the same way, e.g. jwt `secrets`). The admin API never
returns one: reads show a fingerprint "sha256:<12 hex>" instead (pygate/server/admin_api/
secrets.py), and a write may give such a fingerprint to mean "the secret I already
have with this fingerprint". So a real secret must never look like a fingerprint:
`fingerprint_problems` refuses one in a config file (anyone who can read an export
could otherwise present it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import msgspec

from pygate.config.convert import (
    _is_struct,
    _list_item_type,
    _strip_annotated,
    _union_members,
    is_secret,
)
from pygate.config.paths import FieldPath

FINGERPRINT = re.compile(r"^sha256:[0-9a-f]{12}$")

# (value, path) -> replacement; called for every value found at a secret field.
SecretFn = Callable[[Any, FieldPath], Any]


def map_secrets(raw: Any, kind: Any, fn: SecretFn, path: FieldPath = ()) -> Any:
    """A copy of `raw` (user-facing data for `kind`) with `fn` applied to each secret.

    Works on data that is not valid yet, too: a secret list given as one string is
    still a secret (so error messages can be scrubbed of it)."""
    if is_secret(kind):
        return fn(raw, path)
    base = _strip_annotated(kind)
    if _is_struct(base):
        return _map_struct(raw, base, fn, path)
    members = _union_members(base)
    if members and isinstance(raw, dict):
        struct = next((m for m in members if _is_struct(m)), None)
        return _map_struct(raw, struct, fn, path) if struct is not None else raw
    item = _list_item_type(base)
    if item is not None:
        if isinstance(raw, list):
            return [map_secrets(entry, item, fn, (*path, i)) for i, entry in enumerate(raw)]
        if is_secret(item) and isinstance(raw, str):
            return fn(raw, path)
    return raw


def _map_struct(raw: Any, cls: type[msgspec.Struct], fn: SecretFn, path: FieldPath) -> Any:
    if not isinstance(raw, dict):
        return raw
    from pygate.config.schema import Route

    fields = {f.encode_name: f for f in msgspec.structs.fields(cls)}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        info = fields.get(key)
        if cls is Route and key == "plugins" and isinstance(value, dict):
            out[key] = {
                name: _map_plugin(str(name), config, fn, (*path, key, str(name)))
                for name, config in value.items()
            }
        elif info is None:
            out[key] = value
        else:
            out[key] = map_secrets(value, info.type, fn, (*path, key))
    return out


def _map_plugin(name: str, config: Any, fn: SecretFn, path: FieldPath) -> Any:
    from pygate.plugins import get_plugin

    plugin = get_plugin(name)
    if plugin is None or isinstance(config, msgspec.Struct):
        return config
    return map_secrets(config, plugin.schema, fn, path)


def secrets_in(raw: Any, kind: Any) -> Iterator[tuple[FieldPath, str]]:
    """Every secret string in `raw`, with its path."""
    found: list[tuple[FieldPath, str]] = []

    def note(value: Any, path: FieldPath) -> Any:
        if isinstance(value, str) and value:
            found.append((path, value))
        return value

    map_secrets(raw, kind, note)
    return iter(found)


def fingerprint_problems(config: msgspec.Struct) -> Iterator[tuple[FieldPath, str]]:
    """Secrets of a loaded GatewayConfig that have the form of a fingerprint."""
    for path, value in secrets_in(_plain(config), type(config)):
        if FINGERPRINT.match(value):
            yield (
                path,
                (
                    f"{value[:7]}... is the form of a secret's fingerprint (as the admin API "
                    "shows secrets), not a secret: give the secret itself"
                ),
            )


def _plain(value: Any) -> Any:
    """Loaded config objects as the data they were read from (Structs as mappings)."""
    if isinstance(value, msgspec.Struct):
        return {
            f.encode_name: _plain(getattr(value, f.name)) for f in msgspec.structs.fields(value)
        }
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
