"""Render query results for people (table), spreadsheets (csv) and programs (json)."""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson

from pygate.logstore.base import QueryResult

FORMATS = ("table", "csv", "json")


def render(result: QueryResult, fmt: str) -> str:
    if fmt == "table":
        return render_table(result)
    if fmt == "csv":
        return render_csv(result)
    if fmt == "json":
        objects = [dict(zip(result.columns, row, strict=False)) for row in result.rows]
        return orjson.dumps(objects, option=orjson.OPT_INDENT_2).decode() + "\n"
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def render_table(result: QueryResult) -> str:
    header = list(result.columns)
    cells = [[_cell(value) for value in row] for row in result.rows]
    widths = [len(name) for name in header]
    for row in cells:
        for index, text in enumerate(row):
            widths[index] = max(widths[index], len(text))
    numeric = [
        bool(result.rows) and all(_is_number(row[i]) for row in result.rows)
        for i in range(len(header))
    ]

    def line(values: list[str]) -> str:
        parts = [
            value.rjust(width) if right else value.ljust(width)
            for value, width, right in zip(values, widths, numeric, strict=False)
        ]
        return "  ".join(parts).rstrip()

    out = [line(header), line(["-" * w for w in widths])]
    out.extend(line(row) for row in cells)
    noun = "row" if len(cells) == 1 else "rows"
    out.append(f"({len(cells)} {noun})")
    return "\n".join(out) + "\n"


def render_csv(result: QueryResult) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(result.columns)
    for row in result.rows:
        writer.writerow([_cell(value) for value in row])
    return buffer.getvalue()


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return orjson.dumps(value).decode()
    return str(value)
