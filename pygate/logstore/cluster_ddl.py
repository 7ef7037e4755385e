"""`log.cluster: NAME`: the bundled migrations as DDL for a sharded, replicated ClickHouse.

The migrations stay written for one server (pygate/logstore/migrations/); this module
rewrites each statement for a cluster, so there is one schema and the two cannot drift:

- every table `pygate.T` becomes a local table `pygate.T_local`, created ON CLUSTER with
  the Replicated form of its engine (MergeTree -> ReplicatedMergeTree, Aggregating-
  MergeTree -> ReplicatedAggregatingMergeTree, ...; Keeper path
  `{keeper_path}/{shard}/pygate/T_local`, replica `{replica}`: the macros of each node),
  and `pygate.T` itself becomes a Distributed table over `T_local` on every node, so the
  reports, `logs query` and the shipper keep using the names they always used;
- a materialized view is created ON CLUSTER, reading the local source table and writing
  its local (replicated) target: each node rolls up the rows inserted on it, and the
  Distributed table over the target sums the shards;
- an ALTER runs ON CLUSTER on the local table; one that changes columns or the table
  comment also recreates the Distributed table (CREATE OR REPLACE ... AS T_local), so
  its columns are always the local table's;
- a backfill `INSERT ... SELECT` runs through the Distributed tables, synchronously;
- `non_replicated_deduplication_window` becomes `replicated_deduplication_window`: the
  deduplication log of a Replicated table lives in Keeper, shared by a shard's replicas.

Rows are sharded by a deterministic key (a hash of columns of the row, never rand()):
a batch replayed after a partial failure is split into the same per-shard blocks, so
each shard sees the same block with the same token and deduplicates it (README, "ClickHouse
cluster"). A statement this module cannot map raises ClusterDDLError, so a new migration
of an unknown shape fails in tests, not on an operator's cluster.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

DATABASE = "pygate"
LOCAL_SUFFIX = "_local"
DEFAULT_KEEPER_PATH = "/clickhouse/tables"
# ClickHouse identifier rules, unquoted: the name goes into ON CLUSTER and Distributed().
# Both patterns are used with fullmatch: "$" would let a trailing newline through.
CLUSTER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
# Keeper paths: /segment/segment..., no quotes or backslashes (they go into SQL strings);
# macros such as {cluster} are allowed, the server expands them.
KEEPER_PATH = re.compile(r"(/[A-Za-z0-9_.{}-]+)+")

# Shard by the request id where a table has one: a call's row in pygate.requests and
# its row in pygate.ai_calls land on the same shard. Other tables: their sort key.
_SHARDING_KEYS = {"requests": "request_id", "ai_calls": "request_id", "audit_log": "change_id"}

_DDL_SETTING = ("non_replicated_deduplication_window", "replicated_deduplication_window")
_STRING = re.compile(r"'(?:[^'\\]|\\.|'')*'")
_CREATE_DATABASE = re.compile(r"^CREATE DATABASE IF NOT EXISTS (\w+)$")
_CREATE_TABLE = re.compile(r"^CREATE TABLE IF NOT EXISTS (\w+)\.(\w+)\s*\(", re.S)
_CREATE_VIEW = re.compile(
    r"^CREATE MATERIALIZED VIEW IF NOT EXISTS (\w+)\.(\w+)"
    r"\s+TO\s+(\w+)\.(\w+)\s+AS\s+(SELECT\b.*)$",
    re.S,
)
_ALTER = re.compile(r"^ALTER TABLE (\w+)\.(\w+)\s+(.*)$", re.S)
_INSERT_SELECT = re.compile(r"^INSERT INTO (\w+)\.(\w+)\s+(SELECT\b.*)$", re.S)
_ENGINE = re.compile(r"^\s*ENGINE\s*=\s*(\w+)")
_ORDER_BY = re.compile(r"\bORDER BY\s+(\([^)]*\)|[\w.]+)")
_TABLE_COMMENT = re.compile(r"\bCOMMENT\s+(" + _STRING.pattern + r")\s*$", re.S)
_MODIFY_COMMENT = re.compile(r"\bMODIFY COMMENT\s+(" + _STRING.pattern + ")", re.S)
# Clauses after which the Distributed table no longer has the local table's columns.
_CHANGES_COLUMNS = re.compile(
    r"\b(?:(?:ADD|DROP|MODIFY|RENAME|COMMENT|CLEAR)\s+COLUMN|MODIFY\s+COMMENT)\b"
)


class ClusterDDLError(ValueError):
    """A migration statement has a shape the cluster rewrite does not know."""


@dataclass(frozen=True, slots=True)
class ClusterSchema:
    """Where the migrations go: cluster `name` (remote_servers), Replicated tables under
    `keeper_path`. Both are checked by the config (log.cluster, log.keeper_path)."""

    name: str
    keeper_path: str = DEFAULT_KEEPER_PATH

    def __post_init__(self) -> None:
        if not CLUSTER_NAME.fullmatch(self.name):
            raise ValueError(f"not a cluster name: {self.name!r}")
        if not KEEPER_PATH.fullmatch(self.keeper_path) or {".", ".."} & set(
            self.keeper_path.split("/")
        ):
            raise ValueError(f"not a Keeper path: {self.keeper_path!r}")

    def local_table(self, table: str) -> str:
        """`pygate.requests` -> `pygate.requests_local`: where the rows really are."""
        return table + LOCAL_SUFFIX

    def on(self) -> str:
        return f" ON CLUSTER {self.name}"

    def bookkeeping(self) -> tuple[str, ...]:
        """The database and pygate.schema_migrations, cluster-safe.

        schema_migrations is one replicated table over every node of the cluster (its
        Keeper path has no {shard}), not sharded: each node reads the whole list
        locally, and a version recorded through any node reaches all of them. The
        replica name is {shard}-{replica}, unique even where replica macros repeat
        across shards."""
        path = f"{self.keeper_path}/all/{DATABASE}/schema_migrations"
        return (
            f"CREATE DATABASE IF NOT EXISTS {DATABASE} ON CLUSTER {self.name}",
            f"CREATE TABLE IF NOT EXISTS {DATABASE}.schema_migrations ON CLUSTER {self.name} "
            "(version String, applied_at DateTime DEFAULT now()) "
            f"ENGINE = ReplicatedMergeTree('{path}', '{{shard}}-{{replica}}') ORDER BY version",
        )

    def rewriter(self) -> ClusterRewriter:
        return ClusterRewriter(self)


@dataclass
class _Distributed:
    sharding_key: str
    comment: str | None  # the SQL string literal, quotes included


@dataclass
class ClusterRewriter:
    """Rewrites the statements of the migrations in version order (every migration,
    applied or not: a later ALTER needs what the CREATE said about its table)."""

    cluster: ClusterSchema
    tables: dict[str, _Distributed] = field(default_factory=dict)

    def rewrite(self, statement: str) -> list[str]:
        for pattern, handler in self._handlers():
            match = pattern.match(statement)
            if match is not None:
                return handler(match, statement)
        raise ClusterDDLError(
            "no cluster form for this statement (CREATE DATABASE / TABLE / MATERIALIZED "
            f"VIEW ... TO, ALTER TABLE and INSERT ... SELECT are known): {statement[:120]}"
        )

    def _handlers(self) -> tuple[tuple[re.Pattern, Callable[[re.Match, str], list[str]]], ...]:
        return (
            (_CREATE_DATABASE, self._database),
            (_CREATE_TABLE, self._table),
            (_CREATE_VIEW, self._view),
            (_ALTER, self._alter),
            (_INSERT_SELECT, self._insert_select),
        )

    # ----- statements ------------------------------------------------------------------
    def _database(self, match: re.Match, _statement: str) -> list[str]:
        return [f"CREATE DATABASE IF NOT EXISTS {match.group(1)} ON CLUSTER {self.cluster.name}"]

    def _table(self, match: re.Match, statement: str) -> list[str]:
        database, table = self._ours(match.group(1), match.group(2))
        columns_end = _closing_paren(statement, match.end() - 1)
        columns = statement[match.end() - 1 : columns_end + 1]
        rest = statement[columns_end + 1 :]
        engine = _ENGINE.match(rest)
        if engine is None or not engine.group(1).endswith("MergeTree"):
            raise ClusterDDLError(f"{database}.{table}: only MergeTree-family tables replicate")
        name = engine.group(1)
        if name.startswith("Replicated"):
            raise ClusterDDLError(f"{database}.{table}: write the migration's engine unreplicated")
        after = rest[engine.end() :]
        args = ""
        if after.lstrip().startswith("("):
            start = len(after) - len(after.lstrip())
            close = _closing_paren(after, start)
            args = after[start + 1 : close].strip()
            after = after[close + 1 :]
        local = table + LOCAL_SUFFIX
        path = f"{self.cluster.keeper_path}/{{shard}}/{database}/{local}"
        replicated = f"Replicated{name}('{path}', '{{replica}}'{', ' + args if args else ''})"
        after = _map_outside_strings(after, _rename_settings)
        comment = _TABLE_COMMENT.search(after)
        order = _ORDER_BY.search(after)
        if order is None:
            raise ClusterDDLError(f"{database}.{table}: no ORDER BY to shard by")
        key = _SHARDING_KEYS.get(table) or order.group(1).strip("()")
        if key in ("", "tuple"):
            raise ClusterDDLError(f"{database}.{table}: no sort key to shard by (_SHARDING_KEYS)")
        self.tables[table] = _Distributed(f"cityHash64({key})", comment and comment.group(1))
        create_local = (
            f"CREATE TABLE IF NOT EXISTS {database}.{local}{self.cluster.on()}\n{columns}\n"
            f"ENGINE = {replicated}{after}"
        )
        return [create_local, self._distributed(table, "CREATE TABLE IF NOT EXISTS")]

    def _view(self, match: re.Match, _statement: str) -> list[str]:
        database, view = self._ours(match.group(1), match.group(2))
        _, target = self._ours(match.group(3), match.group(4))
        self._known(target)
        select = _map_outside_strings(match.group(5), self._to_local)
        return [
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.{view} ON CLUSTER "
            f"{self.cluster.name}\nTO {database}.{target}{LOCAL_SUFFIX}\nAS {select}"
        ]

    def _alter(self, match: re.Match, _statement: str) -> list[str]:
        database, table = self._ours(match.group(1), match.group(2))
        self._known(table)
        clauses = _map_outside_strings(match.group(3), _rename_settings)
        statements = [
            f"ALTER TABLE {database}.{table}{LOCAL_SUFFIX} ON CLUSTER {self.cluster.name}\n"
            f"    {clauses.lstrip()}"
        ]
        comment = _MODIFY_COMMENT.search(clauses)
        if comment is not None:
            self.tables[table].comment = comment.group(1)
        if _CHANGES_COLUMNS.search(_blank_strings(clauses)):
            statements.append(self._distributed(table, "CREATE OR REPLACE TABLE"))
        return statements

    def _insert_select(self, match: re.Match, _statement: str) -> list[str]:
        database, table = self._ours(match.group(1), match.group(2))
        self._known(table)
        # Through the Distributed tables (it reads every shard once, writes by the
        # sharding key); synchronous, so the migration is done when the rows are.
        return [
            f"INSERT INTO {database}.{table} SETTINGS distributed_foreground_insert = 1\n"
            f"{match.group(3)}"
        ]

    # ----- helpers ---------------------------------------------------------------------
    def _distributed(self, table: str, create: str) -> str:
        spec = self.tables[table]
        name = self.cluster.name
        text = (
            f"{create} {DATABASE}.{table} ON CLUSTER {name} AS {DATABASE}.{table}{LOCAL_SUFFIX}\n"
            f"ENGINE = Distributed('{name}', '{DATABASE}', '{table}{LOCAL_SUFFIX}', "
            f"{spec.sharding_key})"
        )
        return text + (f"\nCOMMENT {spec.comment}" if spec.comment else "")

    def _ours(self, database: str, name: str) -> tuple[str, str]:
        if database != DATABASE:
            raise ClusterDDLError(f"{database}.{name}: migrations only touch {DATABASE}.*")
        return database, name

    def _known(self, table: str) -> None:
        if table not in self.tables:
            raise ClusterDDLError(f"{DATABASE}.{table} is not a table an earlier migration made")

    def _to_local(self, text: str) -> str:
        def local(m: re.Match) -> str:
            name = m.group(1)
            return f"{DATABASE}.{name}{LOCAL_SUFFIX}" if name in self.tables else m.group(0)

        return re.sub(rf"\b{DATABASE}\.(\w+)\b", local, text)


def _rename_settings(text: str) -> str:
    old, new = _DDL_SETTING
    return re.sub(rf"\b{old}\b", new, text)


def _map_outside_strings(text: str, change: Callable[[str], str]) -> str:
    """`change` applied to the SQL between string literals, never inside one."""
    out, last = [], 0
    for literal in _STRING.finditer(text):
        out.append(change(text[last : literal.start()]))
        out.append(literal.group(0))
        last = literal.end()
    out.append(change(text[last:]))
    return "".join(out)


def _blank_strings(text: str) -> str:
    return _STRING.sub("''", text)


def _closing_paren(text: str, start: int) -> int:
    """Index of the `)` matching the `(` at `start`, skipping string literals."""
    depth, i = 0, start
    while i < len(text):
        ch = text[i]
        if ch == "'":
            literal = _STRING.match(text, i)
            if literal is None:
                break
            i = literal.end()
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ClusterDDLError(f"unbalanced parentheses: {text[start : start + 80]}")
