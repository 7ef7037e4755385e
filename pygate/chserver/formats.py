"""Output formats: which Content-Type each gets, as ClickHouse's formats declare it."""

from __future__ import annotations

DEFAULT_FORMAT = "TabSeparated"  # ClickHouse's default for the HTTP interface

_TEXT = "text/plain; charset=UTF-8"
_BINARY = "application/octet-stream"

# Checked in order: the first prefix that matches decides.
_BY_PREFIX = (
    ("TabSeparated", "text/tab-separated-values; charset=UTF-8"),
    ("TSV", "text/tab-separated-values; charset=UTF-8"),
    ("JSONEachRow", "application/x-ndjson; charset=UTF-8"),
    ("JSONCompactEachRow", "application/x-ndjson; charset=UTF-8"),
    ("JSON", "application/json; charset=UTF-8"),
    ("XML", "application/xml; charset=UTF-8"),
    ("Native", _BINARY),
    ("RowBinary", _BINARY),
    ("Parquet", _BINARY),
    ("Arrow", _BINARY),
    ("ORC", _BINARY),
    ("Avro", _BINARY),
    ("MsgPack", _BINARY),
    ("Protobuf", _BINARY),
    ("CapnProto", _BINARY),
    ("BSONEachRow", _BINARY),
    ("Npy", _BINARY),
)


def content_type(fmt: str) -> str:
    if fmt.startswith("CSV"):
        header = "present" if "WithNames" in fmt else "absent"
        return f"text/csv; charset=UTF-8; header={header}"
    for prefix, kind in _BY_PREFIX:
        if fmt.startswith(prefix):
            return kind
    return _TEXT
