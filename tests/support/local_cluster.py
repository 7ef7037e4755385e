"""chDB as one node of the cluster `pygate`, for what of log.cluster can run without a
ClickHouse server.

chDB is clickhouse-local: it reads ./config.xml from its working directory, so a child
process started in a directory holding `config_xml()` sees a cluster `pygate` of one
shard whose only replica is itself (is_local: Distributed reads and writes run in the
process, no network), the macros of node ch-s1-r1 and, with `keeper=True`, ClickHouse's
in-process test Keeper. What it cannot do (checked by the tests that use it, and said in
the README): run ON CLUSTER DDL ("Replicated DDL queries are disabled": clickhouse-local
has no DDL worker) or activate a Replicated table (it stays read-only: replication needs
the interserver HTTP endpoint that only a server sets up, code 139).

So the cluster DDL is run here `demoted`: ON CLUSTER taken out and each Replicated
engine put back to its plain form, everything else exactly as the cluster path emits it.

Run as a script (chDB allows one data directory per process):
    python local_cluster.py build DIR plain|cluster ROWS_FILE NOW_ISO
    python local_cluster.py replicated DIR SQL_FILE
    python local_cluster.py format SQL_FILE
each prints one JSON document.
"""

from __future__ import annotations

import json
import os
import re
import sys

CLUSTER = "pygate"
# Sessions stay open until os._exit: a chDB session closed while Replicated tables
# retry their activation can hang or abort the process.
_KEEP: list = []
MACROS = {"shard": "1", "replica": "ch-s1-r1"}


def config_xml(*, keeper: bool = False) -> str:
    zookeeper = "<zookeeper><implementation>testkeeper</implementation></zookeeper>"
    return f"""<clickhouse>
  <tcp_port>9000</tcp_port>
  {zookeeper if keeper else ""}
  <macros><shard>{MACROS["shard"]}</shard><replica>{MACROS["replica"]}</replica></macros>
  <remote_servers>
    <{CLUSTER}>
      <shard>
        <internal_replication>true</internal_replication>
        <replica><host>localhost</host><port>9000</port></replica>
      </shard>
    </{CLUSTER}>
  </remote_servers>
</clickhouse>
"""


_ON_CLUSTER = re.compile(rf" ON CLUSTER {CLUSTER}\b")
_REPLICATED_BARE = re.compile(r"\bReplicated(\w*MergeTree)\('[^']*', '[^']*'\)")
_REPLICATED_ARGS = re.compile(r"\bReplicated(\w*MergeTree)\('[^']*', '[^']*', ")


def strip_on_cluster(sql: str) -> str:
    return _ON_CLUSTER.sub("", sql)


def demote(sql: str) -> str:
    """The cluster statement as one node would run it, with plain engines."""
    sql = strip_on_cluster(sql)
    sql = _REPLICATED_BARE.sub(r"\1", sql)
    sql = _REPLICATED_ARGS.sub(r"\1(", sql)
    return re.sub(
        r"\breplicated_deduplication_window\b", "non_replicated_deduplication_window", sql
    )


def statements(path: str) -> list[str]:
    from pygate.logstore.schema_migrations import Migration

    with open(path, encoding="utf-8") as f:
        return Migration("file", f.read()).statements()


# ----- modes -----------------------------------------------------------------------------


def _build(path: str, kind: str, rows_file: str, now_iso: str) -> dict:
    from datetime import datetime

    from pygate.logstore.chdb_store import ChdbStore
    from pygate.logstore.clickhouse_store import CLUSTER_SETTINGS
    from pygate.logstore.cluster_ddl import ClusterSchema
    from pygate.logstore.sql_store import sql_string
    from pygate.reports import REPORTS, ReportError, ReportOptions, prepare

    class DemotedClusterStore(ChdbStore):
        """The real store code with log.cluster set; only execution is demoted."""

        def __init__(self, data: str) -> None:
            super().__init__(data)
            self.cluster = ClusterSchema(CLUSTER)
            self.ran: list[str] = []

        def _execute(self, sql: str) -> None:
            self.ran.append(sql)
            super()._execute(demote(sql))

        def _read_text(self, sql: str) -> str:
            self.ran.append(sql)
            return super()._read_text(demote(sql))

    store = DemotedClusterStore(path) if kind == "cluster" else ChdbStore(path)
    _KEEP.append(store)
    out: dict = {"applied": store.migrate(), "applied_again": store.migrate()}
    # The shipper's insert (the settings of a log.cluster store), twice with one token
    # (a replay): the rows count once.
    settings = {**CLUSTER_SETTINGS, "insert_deduplication_token": "batch-1"}
    clause = ", ".join(f"{k} = {sql_string(str(v))}" for k, v in settings.items())
    rows = open(rows_file, encoding="utf-8").read()
    for _ in range(2):
        store._execute(f"INSERT INTO pygate.requests SETTINGS {clause} FORMAT JSONEachRow {rows}")
    # Other rows with that token: dropped too, so the token itself reached the table
    # through the Distributed one (not only the identical data's hash).
    other = rows.splitlines()[0].replace('"known-', '"other-')
    store._execute(f"INSERT INTO pygate.requests SETTINGS {clause} FORMAT JSONEachRow {other}")
    out["retention"] = [store.set_retention(7), store.set_retention(7)]
    now = datetime.fromisoformat(now_iso)
    reports = {}
    for name, report in REPORTS.items():
        options = ReportOptions(
            since="6h", request_id="known-042" if report.needs_request_id else None
        )
        try:
            prepared = prepare(name, options, now=now)
        except ReportError as exc:  # pragma: no cover - a report the loop cannot fill in
            reports[name] = {"error": str(exc)}
            continue
        result = store.query_rows(prepared.sql)  # the guarded read path of logs query
        reports[name] = {"columns": result.columns, "rows": result.rows}
    out["reports"] = reports
    tables = store.query_rows(
        "SELECT name, engine, engine_full, create_table_query, comment FROM system.tables "
        "WHERE database = 'pygate' ORDER BY name"
    ).rows
    out["tables"] = tables
    out["describe"] = {
        name: store.query_rows(f"DESCRIBE TABLE pygate.{name}").rows for name, *_ in tables
    }

    def one(sql: str):
        return store.query_rows(sql).rows[0][0]

    out["counts"] = {
        "requests": one("SELECT count() FROM pygate.requests"),
        "rollup_route": one("SELECT sum(requests) FROM pygate.requests_1m_route"),
        "rollup_consumer": one("SELECT sum(requests) FROM pygate.requests_1m_consumer"),
    }
    out["ran"] = getattr(store, "ran", [])
    return out


def _replicated(path: str, sql_file: str) -> dict:
    """CREATE the cluster's Replicated tables (ON CLUSTER taken out) on the test Keeper."""
    from chdb import session

    s = session.Session(path)
    _KEEP.append(s)
    created = []
    for sql in statements(sql_file):
        if sql.startswith("CREATE DATABASE") or (
            sql.startswith("CREATE TABLE") and "ENGINE = Replicated" in sql
        ):
            s.query(strip_on_cluster(sql))
            created.append(sql.split()[5] if "IF NOT EXISTS" in sql else sql.split()[2])

    def rows(query: str) -> list:
        return json.loads(s.query(query, "JSONCompact").bytes())["data"]

    return {
        "created": created,
        "replicas": rows(
            "SELECT table, engine, zookeeper_path, replica_name, is_readonly "
            "FROM system.replicas WHERE database = 'pygate' ORDER BY table"
        ),
        "engines": rows(
            "SELECT name, engine_full FROM system.tables WHERE database = 'pygate' ORDER BY name"
        ),
    }


def _format(sql_file: str) -> dict:
    from chdb import session

    from pygate.logstore.sql_store import sql_string

    s = session.Session()
    _KEEP.append(s)

    def fmt(sql: str) -> str:
        query = f"SELECT formatQuery({sql_string(sql)})"
        return json.loads(s.query(query, "JSONCompact").bytes())["data"][0][0]

    out = []
    for sql in statements(sql_file):
        once = fmt(sql)
        out.append({"sql": sql, "formatted": once, "again": fmt(once)})
    return {"statements": out}


def main(argv: list[str]) -> None:
    mode, *args = argv
    result = {"build": _build, "replicated": _replicated, "format": _format}[mode](*args)
    print(json.dumps(result))
    sys.stdout.flush()
    # chDB's shutdown can wait on the read-only Replicated tables' background retries.
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
