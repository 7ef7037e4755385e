"""The AST rules of the statement check: which nodes, tables and names may appear.

sql_guard.py parses a statement with the engine's own parser; this module walks the
parsed tree (parseQueryToJSON's JSON) and refuses the first node outside the rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from pygate.logstore.sql_policy import (
    INSERT_SETTINGS,
    TABLE_FUNCTIONS,
    WRITABLE_DATABASES,
    FunctionCatalog,
    StatementRefused,
    require_format,
    require_readable,
)


@dataclass(frozen=True, slots=True)
class Checked:
    kind: str  # "read" or "insert"
    table: str | None = None  # "db.table" an INSERT writes into
    fmt: str | None = None  # the statement's FORMAT clause, if any


class _HasCatalog(Protocol):
    @property
    def catalog(self) -> FunctionCatalog: ...


READ_ONLY = "only SELECT, SHOW, DESCRIBE, EXISTS and EXPLAIN statements may run here"
_IN_FUNCTIONS = frozenset(
    {"in", "notIn", "globalIn", "globalNotIn", "nullIn", "notNullIn", "globalNullIn"}
    | {"globalNotNullIn"}
)
# Expression nodes: what they may contain is checked node by node below.
_EXPRESSION_TYPES = frozenset(
    {
        "ExpressionList",
        "Identifier",
        "Literal",
        "QueryParameter",
        "Subquery",
        "TablesInSelectQuery",
        "TablesInSelectQueryElement",
        "TableJoin",
        "ArrayJoin",
        "OrderByElement",
        "Asterisk",
        "QualifiedAsterisk",
        "ColumnsRegexpMatcher",
        "ColumnsListMatcher",
        "QualifiedColumnsRegexpMatcher",
        "QualifiedColumnsListMatcher",
        "ColumnsTransformerList",
        "ColumnsExceptTransformer",
        "ColumnsReplaceTransformer",
        "ColumnsReplaceTransformerReplacement",
        "SampleRatio",
        "WindowDefinition",
        "WindowListElement",
        "InterpolateElement",
        "SetQuery",
    }
)
# Statement nodes, with every key they may have (any other key is refused).
_OUTFILE_FLAGS = {"is_outfile_append", "is_outfile_truncate", "is_into_outfile_with_stdout"}
_STATEMENT_KEYS = {
    "SelectWithUnionQuery": {
        "union_mode",
        "list_of_modes",
        "list_of_selects",
        "format_ast",
        "settings_ast",
        *_OUTFILE_FLAGS,
    },
    "ExplainQuery": {"kind", "query", "settings", *_OUTFILE_FLAGS},
    "ShowTablesQuery": {"databases", "from", "like", "settings", "not_like", *_OUTFILE_FLAGS}
    | {"case_insensitive_like", "full", "limit_length"},
    "ShowColumnsQuery": {"database", "table", "like", "not_like", "full", *_OUTFILE_FLAGS}
    | {"extended", "case_insensitive_like", "limit_length"},
    "InsertQuery": {"database", "table", "columns", "format", "settings_ast", "select"},
}


class Walk:
    """One pass over a parsed statement; `scope` holds the WITH names in view."""

    def __init__(self, guard: _HasCatalog, database: str, *, writes: bool) -> None:
        self.guard = guard
        self.database = database
        self.writes = writes
        self.in_insert = False

    # ----- statements ---------------------------------------------------------------
    def read_statement(self, ast: dict[str, Any]) -> Checked:
        kind = ast.get("type")
        if kind not in _STATEMENT_KEYS or kind == "InsertQuery":
            raise StatementRefused(f"{READ_ONLY} (this is {kind_name(kind)})")
        self._statement_keys(ast)
        if kind == "ExplainQuery":
            inner = ast.get("query")
            if not isinstance(inner, dict) or inner.get("type") != "SelectWithUnionQuery":
                raise StatementRefused("EXPLAIN is allowed for SELECT statements only")
            self.read_statement(inner)
            return Checked("read")
        if kind == "SelectWithUnionQuery":
            self.select(ast, frozenset())
            return Checked("read", fmt=_format_name(ast))
        # SHOW TABLES / COLUMNS: names and types of tables, nothing else.
        return Checked("read")

    def insert(self, ast: dict[str, Any]) -> Checked:
        self._statement_keys(ast)
        table = ast.get("table")
        database = ast.get("database")
        table_name = _identifier_name(table)
        db_name = _identifier_name(database) if database is not None else self.database
        written_out = all(
            not (isinstance(part, dict) and part.get("children")) for part in (table, database)
        )
        if not table_name or not db_name or not written_out:
            raise StatementRefused("INSERT needs a table name written out")
        if db_name not in WRITABLE_DATABASES:
            raise StatementRefused(
                f"INSERT may write into pygate's tables only, not {db_name}.{table_name}"
            )
        fmt = ast.get("format")
        if fmt:
            require_format(fmt)
        self.in_insert = True
        settings = ast.get("settings_ast")
        if settings is not None:
            self.node(settings, frozenset())
        if ast.get("columns") is not None:
            self.node(ast["columns"], frozenset())
        select = ast.get("select")
        if select is not None:
            if select.get("type") != "SelectWithUnionQuery":
                raise StatementRefused("INSERT ... SELECT needs a plain SELECT")
            self.select(select, frozenset())
        return Checked("insert", table=f"{db_name}.{table_name}", fmt=fmt or None)

    def select(self, ast: dict[str, Any], scope: frozenset[str]) -> None:
        """A SelectWithUnionQuery, as a statement or a subquery."""
        self._statement_keys(ast)
        fmt = _format_name(ast)
        if fmt is not None:
            require_format(fmt)
        if ast.get("settings_ast") is not None:
            self.node(ast["settings_ast"], scope)
        for query in _children(ast.get("list_of_selects")):
            if query.get("type") == "SelectWithUnionQuery":
                self.select(query, scope)
            elif query.get("type") in ("SelectQuery", "SelectIntersectExceptQuery"):
                self.select_query(query, scope)
            else:
                raise StatementRefused(f"{kind_name(query.get('type'))} is not allowed in a query")

    def select_query(self, ast: dict[str, Any], scope: frozenset[str]) -> None:
        if ast.get("type") == "SelectIntersectExceptQuery":
            for part in _children(ast):
                if part.get("type") == "SelectWithUnionQuery":
                    self.select(part, scope)
                else:
                    self.select_query(part, scope)
            return
        with_list = ast.get("with")
        if with_list is not None:
            # WITH names are seen by the rest of this SELECT and its subqueries.
            names = {
                element.get("name") or element.get("alias")
                for element in _children(with_list)
                if isinstance(element, dict)
            }
            self.node(with_list, scope)
            scope = scope | {name for name in names if isinstance(name, str)}
        for key, value in ast.items():
            if key not in ("type", "with"):
                self.value(value, scope)

    # ----- nodes --------------------------------------------------------------------
    def value(self, value: Any, scope: frozenset[str]) -> None:
        if isinstance(value, dict):
            if "type" in value:
                self.node(value, scope)
            else:  # a plain structure (SETTINGS changes): look inside all the same
                for item in value.values():
                    self.value(item, scope)
        elif isinstance(value, list):
            for item in value:
                self.value(item, scope)

    def node(self, node: dict[str, Any], scope: frozenset[str]) -> None:
        kind = node.get("type")
        if "out_file" in node or "infile" in node or node.get("is_into_outfile_with_stdout"):
            raise StatementRefused("INTO OUTFILE and FROM INFILE are not allowed")
        if kind == "SelectWithUnionQuery":
            self.select(node, scope)
        elif kind in ("SelectQuery", "SelectIntersectExceptQuery"):
            self.select_query(node, scope)
        elif kind == "WithElement":
            self.value(node.get("subquery"), scope)
        elif kind == "TableExpression":
            self.table_expression(node, scope)
        elif kind == "TableIdentifier":
            self.table(node, scope)
        elif kind == "Function":
            self.function(node, scope)
        elif kind == "ColumnsApplyTransformer":
            name = node.get("func_name")
            if not isinstance(name, str) or not self.guard.catalog.allowed(name):
                raise StatementRefused(f"function {name} is not allowed in log queries")
            self.value(node.get("lambda"), scope)
            self.value(node.get("parameters"), scope)
        elif kind == "SetQuery":
            self.settings(node)
        elif kind == "Literal":
            return  # data, never evaluated as SQL
        elif kind == "QueryParameter" and node.get("param_type") == "Identifier":
            # {t:Identifier} becomes a name after this check: a table it never saw.
            raise StatementRefused("query parameters of type Identifier are not allowed")
        elif kind in _EXPRESSION_TYPES:
            for key, value in node.items():
                if key != "type":
                    self.value(value, scope)
        else:
            raise StatementRefused(f"{kind_name(kind)} is not allowed in log queries")

    def table_expression(self, node: dict[str, Any], scope: frozenset[str]) -> None:
        function = node.get("table_function")
        if function is not None:
            name = function.get("name")
            if name not in TABLE_FUNCTIONS:
                raise StatementRefused(
                    f"table function {name}() is not allowed: log queries read pygate's "
                    "tables only (table functions allowed: "
                    + ", ".join(sorted(TABLE_FUNCTIONS))
                    + ")"
                )
            self.value(function.get("arguments"), scope)
        for key, value in node.items():
            if key not in ("type", "table_function"):
                self.value(value, scope)

    def table(self, node: dict[str, Any], scope: frozenset[str]) -> None:
        if node.get("children") or not node.get("name"):
            raise StatementRefused("a table name must be written out, not a parameter")
        parts = node.get("name_parts") or [node.get("name")]
        if len(parts) == 1 and parts[0] in scope:
            return  # a WITH name
        if len(parts) == 1:
            require_readable(self.database, parts[0])
        elif len(parts) == 2:
            require_readable(parts[0], parts[1])
        else:
            raise StatementRefused(f"unexpected table name {'.'.join(map(str, parts))}")

    def function(self, node: dict[str, Any], scope: frozenset[str]) -> None:
        name = node.get("name")
        if not isinstance(name, str) or not self.guard.catalog.allowed(name):
            raise StatementRefused(f"function {name} is not allowed in log queries")
        arguments = _children(node.get("arguments"))
        if name in _IN_FUNCTIONS and len(arguments) == 2:
            right = arguments[1]
            if right.get("type") in ("Identifier", "TableIdentifier"):
                self.table(right, scope)  # `x IN db.table` reads the table
        for key, value in node.items():
            if key not in ("type", "name"):
                self.value(value, scope)

    def settings(self, node: dict[str, Any]) -> None:
        # Outside an INSERT a read-only session refuses what it must (readonly cannot
        # be lowered); an INSERT runs writable, so its settings are an allow-list.
        if not self.in_insert:
            return
        for change in node.get("changes") or []:
            name = change.get("name") if isinstance(change, dict) else None
            if name not in INSERT_SETTINGS:
                raise StatementRefused(f"setting {name} is not allowed in an INSERT")

    def _statement_keys(self, ast: dict[str, Any]) -> None:
        if "out_file" in ast or "infile" in ast or ast.get("is_into_outfile_with_stdout"):
            raise StatementRefused("INTO OUTFILE and FROM INFILE are not allowed")
        allowed = _STATEMENT_KEYS.get(ast.get("type"), set())
        extra = set(ast) - allowed - {"type"}
        if extra:
            raise StatementRefused(
                f"{kind_name(ast.get('type'))} with {', '.join(sorted(extra))} is not allowed"
            )


# ----- helpers ---------------------------------------------------------------------------


def _format_name(ast: dict[str, Any]) -> str | None:
    fmt = ast.get("format_ast")
    if fmt is None:
        return None
    name = _identifier_name(fmt)
    if name is None:
        raise StatementRefused("unexpected FORMAT clause")
    return name


def _identifier_name(node: Any) -> str | None:
    if isinstance(node, str):
        return node
    if isinstance(node, dict) and node.get("type") in ("Identifier", "TableIdentifier"):
        name = node.get("name")
        return name if isinstance(name, str) else None
    return None


def _children(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        return [c for c in node.get("children") or [] if isinstance(c, dict)]
    return []


def kind_name(kind: Any) -> str:
    text = str(kind or "this statement")
    return text[: -len("Query")] if text.endswith("Query") else text
