"""What analysts may touch in log SQL: tables, table functions, functions, formats;
and the refusal (StatementRefused) when a statement touches anything else.

Allow-lists only: anything not named here is refused, so a function or system table
added by a later ClickHouse is refused until someone decides it is harmless. The
reasons behind each list are in the README ("Call logs", "What log SQL may read").
"""

from __future__ import annotations

from dataclasses import dataclass

from pygate.logstore.base import LogStoreError

# Every table of these databases may be read; pygate's own, and the SQL-standard
# metadata views (names and types of tables and columns, which tools browse).
READABLE_DATABASES = frozenset({"pygate", "information_schema", "INFORMATION_SCHEMA"})
WRITABLE_DATABASES = frozenset({"pygate"})

# system.* tables that say nothing about other users, queries, files, hosts or
# secrets. Left out on purpose, among others: users, roles, grants, quotas (who may
# do what); processes, query_log, text_log, errors, stack_trace (other queries'
# text and parameters); server_settings, disks, storage_policies, macros, clusters,
# zookeeper, named_collections, dictionaries (paths, addresses, credentials).
READABLE_SYSTEM_TABLES = frozenset(
    {
        "one",
        "numbers",
        "numbers_mt",
        "zeros",
        "zeros_mt",
        "settings",
        "functions",
        "table_functions",
        "formats",
        "data_type_families",
        "aggregate_function_combinators",
        "time_zones",
        "collations",
        "keywords",
        "build_options",
        "databases",  # metadata of the store: tools list schemas and columns
        "tables",
        "columns",
        "parts",
        "parts_columns",
    }
)

# Table functions that make rows out of their arguments and read nothing.
TABLE_FUNCTIONS = frozenset(
    {"numbers", "numbers_mt", "zeros", "zeros_mt", "generate_series", "generateSeries", "values"}
)

# Function categories (system.functions.categories) that compute on their arguments
# only. Not here: Other and uncategorised (file(), sleep(), joinGet(), getMacro(),
# hostName() ... each vetted one by one below), Dictionary and Embedded Dictionary
# (dictionaries have sources: files, URLs, other servers), AI (calls a model
# provider), Introspection, Machine Learning (models are files), Internal.
SAFE_FUNCTION_CATEGORIES = frozenset(
    {
        "Aggregate Functions",
        "Arithmetic",
        "Arrays",
        "Bit",
        "Bitmap",
        "Comparison",
        "Conditional",
        "Dates and Times",
        "Distance",
        "Encoding",
        "Encryption",
        "Financial",
        "Geo",
        "Geo Polygon",
        "Hash",
        "IP Address",
        "JSON",
        "Logical",
        "Map",
        "Mathematical",
        "Null",
        "NumericIndexedVector",
        "QBit",
        "Random Number",
        "Rounding",
        "String",
        "String Replacement",
        "String Search",
        "String Splitting",
        "Time Series",
        "Time Window",
        "Tuple",
        "Type Conversion",
        "URL",
        "UUID",
    }
)

# Pure functions outside those categories, vetted by hand; and names the parser makes
# that system.functions does not list (lambda, EXISTS, GROUPING).
VETTED_FUNCTIONS = frozenset(
    {
        "lambda",
        "exists",
        "grouping",
        "_CAST",
        "caseWithExpression",
        "caseWithoutExpression",
        "indexHint",
        "transform",
        "formatReadableSize",
        "formatReadableDecimalSize",
        "formatReadableQuantity",
        "formatReadableTimeDelta",
        "bar",
        "sparkBar",
        "identity",
        "ignore",
        "materialize",
        "isConstant",
        "toTypeName",
        "toColumnTypeName",
        "blockSize",
        "blockNumber",
        "rowNumberInBlock",
        "rowNumberInAllBlocks",
        "runningDifference",
        "runningDifferenceStartingWithFirstValue",
        "runningAccumulate",
        "neighbor",
        "finalizeAggregation",
        "initializeAggregation",
        "throwIf",
        "currentDatabase",
        "currentUser",
        "version",
        "uptime",
        "serverTimeZone",
        "timeZoneOf",
        "timeZoneOffset",
        "toTimeZone",
        "getSetting",
        "getSettingOrDefault",
        "errorCodeToName",
        "defaultValueOfArgumentType",
        "defaultValueOfTypeName",
        "getSizeOfEnumType",
        "levenshteinDistance",
        "levenshteinDistanceUTF8",
        "parseTimeDelta",
        "parseReadableSize",
        "parseReadableSizeOrNull",
        "parseReadableSizeOrZero",
        "visitParamExtractBool",
        "visitParamExtractFloat",
        "visitParamExtractInt",
        "visitParamExtractRaw",
        "visitParamExtractString",
        "visitParamExtractUInt",
        "visitParamHas",
        "splitByAlpha",
        "flatten",
        "countDigits",
        "scalarProduct",
        "width_bucket",
        "formatQuery",
        "formatQuerySingleLine",
        "formatQueryFromJSON",
        "parseQueryToJSON",
        "normalizeQuery",
        "normalizedQueryHash",
    }
)

# Formats for results and INSERT data: none reads a schema or template file
# (Protobuf, CapnProto, Template, Regexp are left out) or fetches one over the
# network (AvroConfluent). Compared case-insensitively, as ClickHouse does for most.
FORMATS = frozenset(
    name.lower()
    for name in (
        "TabSeparated TSV TabSeparatedRaw TSVRaw TabSeparatedWithNames TSVWithNames "
        "TabSeparatedWithNamesAndTypes TSVWithNamesAndTypes TabSeparatedRawWithNames "
        "TSVRawWithNames TabSeparatedRawWithNamesAndTypes TSVRawWithNamesAndTypes "
        "CSV CSVWithNames CSVWithNamesAndTypes CustomSeparated CustomSeparatedWithNames "
        "CustomSeparatedWithNamesAndTypes JSON JSONStrings JSONColumns "
        "JSONColumnsWithMetadata JSONCompact JSONCompactStrings JSONCompactColumns "
        "JSONEachRow PrettyJSONEachRow JSONEachRowWithProgress JSONStringsEachRow "
        "JSONStringsEachRowWithProgress JSONCompactEachRow JSONCompactEachRowWithNames "
        "JSONCompactEachRowWithNamesAndTypes JSONCompactStringsEachRow "
        "JSONCompactStringsEachRowWithNames JSONCompactStringsEachRowWithNamesAndTypes "
        "JSONObjectEachRow JSONLines NDJSON JSONAsString JSONAsObject TSKV Pretty "
        "PrettyNoEscapes PrettyMonoBlock PrettyNoEscapesMonoBlock PrettyCompact "
        "PrettyCompactNoEscapes PrettyCompactMonoBlock PrettyCompactNoEscapesMonoBlock "
        "PrettySpace PrettySpaceNoEscapes PrettySpaceMonoBlock PrettySpaceNoEscapesMonoBlock "
        "Vertical Markdown XML Values Native RowBinary RowBinaryWithNames "
        "RowBinaryWithNamesAndTypes RowBinaryWithDefaults Arrow ArrowStream Parquet ORC "
        "Avro BSONEachRow MsgPack Null SQLInsert LineAsString RawBLOB Npy Prometheus"
    ).split()
)

# Settings an INSERT may carry in its own SETTINGS clause. An INSERT runs in the
# writable session, so nothing that changes how data is read (a Values row that is an
# expression, a file or URL behind a format) may be switched on there.
INSERT_SETTINGS = frozenset(
    {
        "insert_deduplication_token",
        "insert_deduplicate",
        "async_insert",
        "wait_for_async_insert",
        "wait_for_async_insert_timeout",
        "max_insert_block_size",
        "min_insert_block_size_rows",
        "min_insert_block_size_bytes",
        "date_time_input_format",
        "input_format_null_as_default",
        "input_format_skip_unknown_fields",
        "input_format_defaults_for_omitted_fields",
        "input_format_allow_errors_num",
        "input_format_allow_errors_ratio",
    }
)


class StatementRefused(LogStoreError):
    """The statement does something log SQL may not; nothing of it ran."""


class StatementInvalid(LogStoreError):
    """The engine could not parse the statement (its error code and text)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def query_error_status(exc: LogStoreError) -> int:
    """The HTTP status for a failed log query: 403 for a refused statement, else 400."""
    return 403 if isinstance(exc, StatementRefused) else 400


def require_readable(database: str, table: str) -> None:
    if database in READABLE_DATABASES:
        return
    if database == "system" and table in READABLE_SYSTEM_TABLES:
        return
    raise StatementRefused(
        f"table {database}.{table} is not readable: log queries read the pygate database "
        "(and system tables with no secrets in them: "
        + ", ".join(sorted(READABLE_SYSTEM_TABLES))
        + ")"
    )


def require_format(fmt: str) -> None:
    if fmt.lower() not in FORMATS:
        raise StatementRefused(f"format {fmt} is not allowed in log queries")


@dataclass(frozen=True, slots=True)
class FunctionInfo:
    categories: frozenset[str]
    alias_to: str
    is_aggregate: bool
    case_insensitive: bool
    builtin: bool  # origin System, not a user-defined function


class FunctionCatalog:
    """The engine's functions (system.functions), to decide which a query may call."""

    def __init__(self, rows: list[list], combinators: list[str]) -> None:
        self._by_name: dict[str, FunctionInfo] = {}
        self._by_lower: dict[str, str] = {}
        for name, categories, alias_to, is_aggregate, case_insensitive, origin in rows:
            parts = frozenset(part.strip() for part in str(categories).split(",") if part.strip())
            info = FunctionInfo(
                parts, alias_to, bool(is_aggregate), bool(case_insensitive), origin == "System"
            )
            self._by_name[name] = info
            if info.case_insensitive:
                self._by_lower[name.lower()] = name
        # Longest first, so "MergeState" is not taken for "State".
        self._combinators = sorted(combinators, key=len, reverse=True)

    def allowed(self, name: str) -> bool:
        return self._allowed(name, depth=0)

    def _allowed(self, name: str, depth: int) -> bool:
        if depth > 8:
            return False
        if name in VETTED_FUNCTIONS or name.lower() in VETTED_FUNCTIONS:
            return True
        canonical = name if name in self._by_name else self._by_lower.get(name.lower())
        if canonical is not None:
            info = self._by_name[canonical]
            if not info.builtin:
                return False
            if canonical in VETTED_FUNCTIONS:
                return True
            if info.alias_to:
                return self._allowed(info.alias_to, depth + 1)
            return bool(info.categories) and info.categories <= SAFE_FUNCTION_CATEGORIES
        # sumIf, uniqStateMerge, ...: an aggregate function with combinators.
        return self._aggregate_allowed(name, depth)

    def _aggregate_allowed(self, name: str, depth: int) -> bool:
        for suffix in self._combinators:
            if not (name.endswith(suffix) and len(name) > len(suffix)):
                continue
            base = name[: -len(suffix)]
            canonical = base if base in self._by_name else self._by_lower.get(base.lower())
            if canonical is not None:
                if self._by_name[canonical].is_aggregate and self._allowed(base, depth + 1):
                    return True
            elif depth < 8 and self._aggregate_allowed(base, depth + 1):
                return True
        return False


FUNCTION_CATALOG_SQL = (
    "SELECT name, categories, alias_to, is_aggregate, case_insensitive, toString(origin) "
    "FROM system.functions"
)
COMBINATORS_SQL = "SELECT name FROM system.aggregate_function_combinators"
