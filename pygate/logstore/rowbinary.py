"""RowBinary rows for the tables pygate writes from Python (see tables.py).

A table is declared once, as (column, ClickHouse type) pairs in table order; the
declaration is what encodes its rows, and a test compares it with `DESCRIBE TABLE` on a
migrated store (tests/test_log_columns.py). pygate.requests rows are encoded by the core
(core-rs/src/records/columns.rs), not here.

Values a row leaves out (or sets to None) are written as the type's default: "", 0 or
false, as ClickHouse fills a column an insert omits. Unsigned integers above the type's
range are written as its maximum rather than refused; DateTime64(3) takes integer
milliseconds since the Unix epoch.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any

STRING_TYPES = frozenset({"String", "LowCardinality(String)"})


def _fixed(code: str) -> Callable[[Any], bytes]:
    return struct.Struct("<" + code).pack


# type -> (pack one value, the largest value the type holds or None, the default value)
_FIXED: dict[str, tuple[Callable[[Any], bytes], int | None, object]] = {
    "DateTime64(3)": (_fixed("q"), 0x7FFF_FFFF_FFFF_FFFF, 0),  # ms since the Unix epoch
    "UInt8": (_fixed("B"), 0xFF, 0),
    "UInt16": (_fixed("H"), 0xFFFF, 0),
    "UInt32": (_fixed("I"), 0xFFFF_FFFF, 0),
    "UInt64": (_fixed("Q"), 0xFFFF_FFFF_FFFF_FFFF, 0),
    "Float32": (_fixed("f"), None, 0.0),
    "Float64": (_fixed("d"), None, 0.0),
    "Bool": (_fixed("?"), None, False),
}


def put_string(out: bytearray, value: str) -> None:
    """A String: its UTF-8 length as LEB128, then the bytes."""
    data = value.encode()
    size = len(data)
    while size >= 0x80:
        out.append((size & 0x7F) | 0x80)
        size >>= 7
    out.append(size)
    out += data


class RowBinaryTable:
    """One table's columns, and its rows in RowBinary."""

    def __init__(self, name: str, columns: Sequence[tuple[str, str]]) -> None:
        self.name = name
        self.columns = tuple(columns)
        plan = []
        for column, type_ in self.columns:
            if type_ in STRING_TYPES:
                plan.append((column, None, None, ""))
            elif type_ in _FIXED:
                pack, limit, default = _FIXED[type_]
                plan.append((column, pack, limit, default))
            else:
                raise ValueError(f"{name}.{column}: no RowBinary writer for {type_}")
        self._plan = tuple(plan)

    def encode(self, row: Mapping[str, Any], out: bytearray | None = None) -> bytearray:
        """`row` (column -> value) appended to `out` (a new buffer if None)."""
        out = bytearray() if out is None else out
        for column, pack, limit, default in self._plan:
            value = row.get(column)
            if value is None:
                value = default
            if pack is None:
                put_string(out, value if isinstance(value, str) else str(value))
            else:
                out += pack(min(int(value), limit) if limit is not None else value)
        return out
