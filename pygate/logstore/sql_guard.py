"""The statement check for log SQL: parse with ClickHouse's own parser, allow by AST.

Read-only sessions (readonly=1 or 2) do not stop everything: chDB runs every table
function, `file()` the scalar function, `INTO OUTFILE` and `INSERT INTO FUNCTION`
in them, and has no users or grants to limit them (see the README, "What log SQL may
read"). So before a statement runs, the engine that will run it parses it
(`parseQueryToJSON`), and the statement runs only if every node of its AST is of a
kind allowed here and names only allowed tables, table functions, functions and
formats (sql_policy.py). The AST is trusted only if formatting it gives back the
statement exactly as ClickHouse formats the text: nothing was left out of it.

Allowed: SELECT (with UNION, WITH, subqueries, joins, window functions), SHOW
TABLES / DATABASES / COLUMNS / SETTINGS, DESCRIBE / EXISTS / SHOW CREATE of a table,
EXPLAIN of a SELECT, and, where the caller allows writes, INSERT into pygate's
tables (VALUES, FORMAT data, or a checked SELECT). Everything else is refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from pygate.chserver.sqltext import PUNCT, QUOTED_ID, WORD, tokens, top_level
from pygate.logstore.base import LogStoreError
from pygate.logstore.sql_policy import (
    COMBINATORS_SQL,
    FUNCTION_CATALOG_SQL,
    FunctionCatalog,
    StatementInvalid,
    StatementRefused,
    query_error_status,
    require_format,
    require_readable,
)
from pygate.logstore.sql_store import sql_string
from pygate.logstore.sql_walk import READ_ONLY, Checked, Walk

# Runs one SELECT on the engine that will run the statement; returns the rows of its
# JSONCompact answer. Raises the engine's own exception on failure.
Runner = Callable[[str], list[list[Any]]]


_ENGINE_CODE = re.compile(r"Code: (\d+)\. ")


class SqlGuard:
    def __init__(self, run: Runner) -> None:
        self._run = run
        self._catalog: FunctionCatalog | None = None

    def check(self, sql: str, *, database: str = "default", writes: bool = False) -> Checked:
        """What `sql` does, if it may run; raises StatementRefused or StatementInvalid."""
        keywords = [t.keyword for t in _significant(sql)[:2]]
        first = keywords[0] if keywords else ""
        if first in ("DESCRIBE", "DESC", "EXISTS") or keywords == ["SHOW", "CREATE"]:
            return self._check_table_statement(sql, database)
        if first == "INSERT":
            if not writes:
                raise StatementRefused(f"INSERT is not allowed: {READ_ONLY}")
            values = _values_keyword(sql)
            if values is not None:
                # Inline VALUES data is not SQL to the parser: check the statement
                # with the data cut off, as if it were `FORMAT Values`.
                # On a line of its own, so no comment can swallow it; and it must come
                # back as the format, or the cut was not where the parser saw VALUES.
                head = self._parse(sql[:values] + "\nFORMAT Values")
                if head.get("select") is not None or head.get("format") != "Values":
                    raise StatementRefused("the statement check cannot tell where VALUES start")
                return Walk(self, database, writes=True).insert(head)
        ast = self._parse(sql)
        walk = Walk(self, database, writes=writes)
        if ast.get("type") == "InsertQuery":
            return walk.insert(ast)
        return walk.read_statement(ast)

    def check_read(self, sql: str) -> Checked:
        """A read for `logs query`, reports and /logs/query, which choose the format."""
        checked = self.check(sql)
        if checked.fmt is not None:
            raise StatementRefused(
                f"FORMAT {checked.fmt}: the output format is chosen by pygate "
                '(logs query --format, or /logs/query\'s "format")'
            )
        return checked

    @property
    def catalog(self) -> FunctionCatalog:
        if self._catalog is None:
            rows = self._run(FUNCTION_CATALOG_SQL)
            combinators = [row[0] for row in self._run(COMBINATORS_SQL)]
            self._catalog = FunctionCatalog(rows, combinators)
        return self._catalog

    def _parse(self, sql: str) -> dict[str, Any]:
        literal = sql_string(sql)
        probe = (
            f"WITH {literal} AS q SELECT parseQueryToJSON(q) AS ast, "
            "formatQuerySingleLine(q) = formatQueryFromJSON(ast)"
        )
        try:
            rows = self._run(probe)
        except Exception as exc:  # the engine's own error: syntax, unsupported node
            raise _engine_failure(exc) from None
        ast_text, complete = rows[0]
        if not complete:
            raise StatementRefused("the statement check cannot account for all of this statement")
        return orjson.loads(ast_text)

    def _check_table_statement(self, sql: str, database: str) -> Checked:
        """DESCRIBE / EXISTS / SHOW CREATE [TABLE] name [FORMAT f]: parseQueryToJSON has
        no AST for them, so the text must be exactly this shape, and the engine must
        format it as it formats the same statement rebuilt from the parts found."""
        items = _significant(sql)
        if items and items[-1].kind == PUNCT and items[-1].text == ";":
            items.pop()
        verb_length = 2 if items[0].keyword == "SHOW" else 1
        verb = " ".join(t.keyword for t in items[:verb_length])
        verb = "DESCRIBE" if verb == "DESC" else verb
        rest = items[verb_length:]
        if rest and rest[0].keyword == "TABLE":
            rest = rest[1:]
        fmt = None
        if len(rest) >= 2 and rest[-2].keyword == "FORMAT" and rest[-1].kind in (WORD, QUOTED_ID):
            fmt = rest[-1].name
            rest = rest[:-2]
        names = [t.name for t in rest[0::2]]
        shape_ok = (
            len(rest) in (1, 3)
            and all(t.kind in (WORD, QUOTED_ID) for t in rest[0::2])
            and all(t.kind == PUNCT and t.text == "." for t in rest[1::2])
        )
        if not shape_ok:
            raise StatementRefused(f"{verb} takes a table name only (a table of pygate)")
        db, table = (names[0], names[1]) if len(names) == 2 else (None, names[0])
        rebuilt = f"{verb} TABLE " + ".".join(_quote_id(n) for n in names if n is not None)
        if fmt is not None:
            rebuilt += f" FORMAT {_quote_id(fmt)}"
        probe = (
            f"SELECT formatQuerySingleLine({sql_string(sql)}) = "
            f"formatQuerySingleLine({sql_string(rebuilt)})"
        )
        try:
            same = self._run(probe)[0][0]
        except Exception as exc:
            raise _engine_failure(exc) from None
        if not same:
            raise StatementRefused(f"{verb} takes a table name only (a table of pygate)")
        require_readable(db or database, table)
        if fmt is not None:
            require_format(fmt)
        return Checked("read", fmt=fmt)


def _significant(sql: str) -> list:
    try:
        return list(tokens(sql))
    except LogStoreError:
        raise
    except Exception as exc:  # unterminated quote or comment: the parser says it best
        raise StatementInvalid(62, str(exc)) from None


def _values_keyword(sql: str) -> int | None:
    """Where a top-level VALUES keyword of an INSERT starts, if it has one."""
    for token in top_level(tokens(sql)):
        if token.keyword in ("SELECT", "WITH", "FORMAT"):
            return None
        if token.keyword == "VALUES":
            return token.start
    return None


def _quote_id(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _engine_failure(exc: Exception) -> LogStoreError:
    text = str(exc).strip()
    if "does not support JSON serialization" in text or "not supported by parseQueryToJSON" in text:
        return StatementRefused(READ_ONLY)
    if "Unknown function parseQueryToJSON" in text or "UNKNOWN_FUNCTION" in text:
        return StatementRefused(
            "the ClickHouse server cannot parse for pygate's statement check "
            "(parseQueryToJSON is missing; it needs a newer ClickHouse)"
        )
    # Cut the probe's own text ("In scope WITH '...' AS q SELECT ...") off the message.
    text = text.split(": In scope ", 1)[0].split("\n", 1)[0]
    match = _ENGINE_CODE.search(text)
    return StatementInvalid(int(match.group(1)) if match else 62, text)


__all__ = ["Checked", "SqlGuard", "StatementInvalid", "StatementRefused", "query_error_status"]
