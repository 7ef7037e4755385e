"""URL parameters: which belong to the HTTP interface and which are ClickHouse settings.

ClickHouse treats every parameter it does not know as a setting for the query. The
transport parameters below are handled by the server itself; `param_NAME` values
fill `{NAME:Type}` placeholders; everything else is passed to chDB as a setting, so
an unknown one fails the query with UNKNOWN_SETTING, as it would on ClickHouse.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from pygate.chserver.errors import BAD_ARGUMENTS, NOT_IMPLEMENTED, ClickHouseError
from pygate.chserver.sqltext import quote_literal

# Parameters with a meaning for the HTTP layer only.
TRANSPORT_PARAMS = frozenset(
    {
        "query",
        "database",
        "default_format",
        "user",
        "password",
        "quota_key",
        "query_id",
        "session_id",
        "session_timeout",
        "session_check",
        "compress",
        "decompress",
        "role",
        "stacktrace",
        # We always answer after the query ended, so this holds anyway.
        "wait_end_of_query",
        "buffer_size",
        # clickhouse-connect probes for a newer Native revision with it; without an
        # answer in that revision it falls back to the classic one, which chDB writes.
        "client_protocol_version",
    }
)
_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_QUERY_PARAM_PREFIX = "param_"


@dataclass(frozen=True, slots=True)
class RequestParams:
    settings: dict[str, str]  # name -> SQL literal
    query_params: dict[str, str]  # for {name:Type} placeholders
    read_only_requested: bool  # readonly=1|2 asked for by the client


def split_params(params: Mapping[str, str]) -> RequestParams:
    for name in ("compress", "decompress"):
        if params.get(name, "0") not in ("0", "", "false"):
            # ClickHouse's own block compression (CityHash checksums) is not spoken
            # here; HTTP compression (Content-Encoding / Accept-Encoding) is.
            raise ClickHouseError(
                NOT_IMPLEMENTED,
                f"{name}=1 (ClickHouse native block compression) is not supported by "
                "pygate logs serve; use HTTP compression (enable_http_compression=1 with "
                "Accept-Encoding, or Content-Encoding on the request)",
            )
    settings: dict[str, str] = {}
    query_params: dict[str, str] = {}
    read_only = False
    for name, value in params.items():
        if name in TRANSPORT_PARAMS:
            continue
        if name.startswith(_QUERY_PARAM_PREFIX):
            query_params[name[len(_QUERY_PARAM_PREFIX) :]] = value
            continue
        if not _SETTING_NAME.match(name):
            raise ClickHouseError(BAD_ARGUMENTS, f"Invalid setting name {name!r}")
        if name == "readonly":
            # Raising readonly is how ClickHouse clients ask for a read-only query; it
            # routes the query to the read-only chDB session instead of being SET
            # (a writable chDB session with readonly=1 could never go back).
            read_only = value not in ("0", "")
            continue
        settings[name] = quote_literal(value)
    return RequestParams(settings, query_params, read_only)


def setting_value(literal: str | None) -> str | None:
    """A SQL literal ('1' or 1) back to its plain text, for settings the server reads."""
    if literal is None:
        return None
    if len(literal) >= 2 and literal[0] == literal[-1] == "'":
        return literal[1:-1]
    return literal
