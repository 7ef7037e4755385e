"""Bind ClickHouse query parameters (`{name:Type}`) into report SQL as typed literals.

Report SQL is written with ClickHouse's own parameter syntax, so the text runs as-is
in clickhouse-client (`--param_route=...`) and with chDB's `params=`. The gateway's
query path (`POST /logs/query`, `LogStore.query`) takes plain SQL, so we bind here:
each value is checked against the declared type and written as a literal of that
type; a string can never end its quotes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime

_PLACEHOLDER = re.compile(r"\{(\w+):\s*([^{}]+?)\s*\}")
_UINT32_MAX = 2**32 - 1


class ParamError(ValueError):
    """A report parameter is missing or has the wrong type (a bug in the caller)."""


def placeholders(sql: str) -> dict[str, str]:
    """Parameter name -> declared type, for every `{name:Type}` in `sql`."""
    declared: dict[str, str] = {}
    for name, type_name in _PLACEHOLDER.findall(sql):
        if declared.setdefault(name, type_name) != type_name:
            raise ParamError(f"parameter {name} declared as {declared[name]} and {type_name}")
    return declared


def bind(sql: str, values: Mapping[str, object]) -> str:
    declared = placeholders(sql)
    missing = sorted(set(declared) - set(values))
    if missing:
        raise ParamError(f"missing report parameters: {', '.join(missing)}")
    return _PLACEHOLDER.sub(lambda m: literal(values[m.group(1)], m.group(2)), sql)


def literal(value: object, type_name: str) -> str:
    if type_name.startswith("Nullable(") and type_name.endswith(")"):
        return "NULL" if value is None else literal(value, type_name[len("Nullable(") : -1])
    if type_name == "String":
        if not isinstance(value, str):
            raise ParamError(f"expected a string, got {value!r}")
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if type_name == "UInt32":
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _UINT32_MAX:
            raise ParamError(f"expected an integer 0..{_UINT32_MAX}, got {value!r}")
        return str(value)
    if type_name == "DateTime64(3)":
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ParamError(f"expected a timezone-aware datetime, got {value!r}")
        return f"toDateTime64('{native_value(value)}', 3, 'UTC')"
    raise ParamError(f"unsupported parameter type {type_name}")


def native_value(value: object) -> str | None:
    """The value as clickhouse-client/chDB take it for a native parameter (times in UTC)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return None if value is None else str(value)
