"""`logs serve`'s statements on logd's socket: what goes in a frame and back.

When logd owns the store, `logs serve` keeps the HTTP side (users, Host/Origin, HTTP
sessions, compression) and hands each statement to logd, which checks and runs it on
its own chDB sessions (pygate/logd/serve_backend.py), so the statement check runs
where the statement runs. A frame is a length-prefixed JSON head and raw bytes:

    statement:  head_len u32 | {database, settings, writable, fmt, sql, params, insert} | data
    outcome:    head_len u32 | {read_rows, ..., elapsed_ns}                            | body
    error:      {code, message, name}                   (status CH_ERROR)

The INSERT data and the query result stay bytes end to end (never decoded in Python).
"""

from __future__ import annotations

import struct

import msgspec

from pygate.chserver.engine import Outcome, ServerInfo, Statement
from pygate.chserver.errors import ClickHouseError
from pygate.chserver.sqltext import InsertWithData

_LEN = struct.Struct("<I")


class WireError(ValueError):
    """A frame that is not a statement, an outcome or an error of ours."""


class _Insert(msgspec.Struct, forbid_unknown_fields=True):
    query: str
    fmt: str


class _StatementHead(msgspec.Struct, forbid_unknown_fields=True):
    database: str
    settings: dict[str, str]
    writable: bool
    fmt: str
    sql: str = ""
    params: dict[str, str] = {}
    insert: _Insert | None = None


class _OutcomeHead(msgspec.Struct, forbid_unknown_fields=True):
    read_rows: int = 0
    read_bytes: int = 0
    written_rows: int = 0
    written_bytes: int = 0
    elapsed_ns: int = 0


class _Error(msgspec.Struct, forbid_unknown_fields=True):
    code: int
    message: str
    name: str | None = None


class _Info(msgspec.Struct, forbid_unknown_fields=True):
    version: str
    timezone: str
    http_compression_default: bool


class _Check(msgspec.Struct, forbid_unknown_fields=True):
    database: str
    settings: dict[str, str]
    writable: bool


def _split(payload: bytes | memoryview) -> tuple[bytes, memoryview]:
    view = memoryview(payload)
    if len(view) < _LEN.size:
        raise WireError("truncated frame")
    (head_len,) = _LEN.unpack_from(view)
    end = _LEN.size + head_len
    if end > len(view):
        raise WireError("truncated frame head")
    return bytes(view[_LEN.size : end]), view[end:]


def _join(head: bytes, rest: bytes | memoryview) -> bytes:
    return b"".join((_LEN.pack(len(head)), head, rest))


def _decode(raw: bytes, kind: type):
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.DecodeError as exc:
        raise WireError(f"malformed frame: {exc}") from None


# ----- statements ----------------------------------------------------------------------


def encode_statement(statement: Statement) -> bytes:
    insert = statement.insert
    head = _StatementHead(
        database=statement.database,
        settings=statement.settings,
        writable=statement.writable,
        fmt=statement.fmt,
        sql=statement.sql,
        params=statement.params,
        insert=_Insert(insert.query, insert.fmt) if insert is not None else None,
    )
    return _join(msgspec.json.encode(head), statement.data if insert is not None else b"")


def decode_statement(payload: bytes | memoryview) -> Statement:
    raw, data = _split(payload)
    head = _decode(raw, _StatementHead)
    insert = None
    if head.insert is not None:
        insert = InsertWithData(query=head.insert.query, fmt=head.insert.fmt, data_offset=0)
    elif len(data):
        raise WireError("data without an INSERT")
    return Statement(
        database=head.database,
        settings=head.settings,
        writable=head.writable,
        fmt=head.fmt,
        sql=head.sql,
        params=head.params,
        insert=insert,
        data=data,
    )


def encode_check(database: str, settings: dict[str, str], writable: bool) -> bytes:
    return msgspec.json.encode(_Check(database, settings, writable))


def decode_check(payload: bytes | memoryview) -> tuple[str, dict[str, str], bool]:
    check = _decode(bytes(payload), _Check)
    return check.database, check.settings, check.writable


# ----- answers -------------------------------------------------------------------------


def encode_outcome(outcome: Outcome) -> bytes:
    head = _OutcomeHead(
        read_rows=outcome.read_rows,
        read_bytes=outcome.read_bytes,
        written_rows=outcome.written_rows,
        written_bytes=outcome.written_bytes,
        elapsed_ns=outcome.elapsed_ns,
    )
    return _join(msgspec.json.encode(head), outcome.body)


def decode_outcome(payload: bytes) -> Outcome:
    raw, body = _split(payload)
    head = _decode(raw, _OutcomeHead)
    return Outcome(
        body=bytes(body),
        read_rows=head.read_rows,
        read_bytes=head.read_bytes,
        written_rows=head.written_rows,
        written_bytes=head.written_bytes,
        elapsed_ns=head.elapsed_ns,
    )


def encode_error(error: ClickHouseError) -> bytes:
    return msgspec.json.encode(_Error(error.code, error.message, error.name))


def decode_error(payload: bytes) -> ClickHouseError:
    error = _decode(payload, _Error)
    return ClickHouseError(error.code, error.message, error.name)


def encode_info(info: ServerInfo) -> bytes:
    return msgspec.json.encode(_Info(info.version, info.timezone, info.http_compression_default))


def decode_info(payload: bytes) -> ServerInfo:
    info = _decode(payload, _Info)
    return ServerInfo(info.version, info.timezone, info.http_compression_default)
