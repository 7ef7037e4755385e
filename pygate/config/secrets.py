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

from pygate.config.convert import is_secret
from pygate.config.paths import FieldPath
from pygate.config.typed_copy import TypedCopy

FINGERPRINT = re.compile(r"^sha256:[0-9a-f]{12}$")

# (value, path) -> replacement; called for every value found at a secret field.
SecretFn = Callable[[Any, FieldPath], Any]


def map_secrets(raw: Any, kind: Any, fn: SecretFn, path: FieldPath = ()) -> Any:
    """A copy of `raw` (user-facing data for `kind`) with `fn` applied to each secret.

    Works on data that is not valid yet, too: a secret list given as one string is
    still a secret (so error messages can be scrubbed of it)."""
    return _SecretMap(fn).copy(raw, kind, path)


class _SecretMap(TypedCopy):
    def __init__(self, fn: SecretFn) -> None:
        self.fn = fn

    def copy(self, raw: Any, kind: Any, path: FieldPath = ()) -> Any:
        if is_secret(kind):
            return self.fn(raw, path)
        return super().copy(raw, kind, path)

    def other(self, raw: Any, kind: Any, list_item: Any, path: FieldPath) -> Any:
        if list_item is not None and is_secret(list_item) and isinstance(raw, str):
            return self.fn(raw, path)
        return raw

    def plugin(self, name: str, config: Any, path: FieldPath) -> Any:
        if isinstance(config, msgspec.Struct):  # already loaded: no user data to map
            return config
        return super().plugin(name, config, path)


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
