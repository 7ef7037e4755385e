"""log.cluster: the migrations as ON CLUSTER DDL, checked with the real engine (chDB 26.x).

No ClickHouse server or Keeper can be installed here, and chDB (clickhouse-local) cannot
run ON CLUSTER DDL nor activate a Replicated table. So, with what can run:
- every statement of deploy/clickhouse/cluster/schema.sql parses, ON CLUSTER and the
  Replicated engine included (the engine's own formatQuery, formatted twice the same);
- the Replicated tables are created by the engine on its in-process test Keeper, with
  the {shard}/{replica} macros of a node expanded into the Keeper paths;
- the whole cluster migration path (the store's own migrate and set_retention) runs on
  chDB as the one node of a local cluster, with ON CLUSTER and replication taken out:
  it builds local tables equal to the one-server schema, Distributed tables with the
  same columns under the usual names, views over the local tables; a replayed insert
  through the Distributed table counts once; every report gives what it gives on one
  server.
(support/local_cluster.py says how; README "ClickHouse cluster" what stays unverified.)
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.local_cluster import MACROS, config_xml
from test_reports import known_rows

ROOT = Path(__file__).resolve().parent.parent
CLUSTER_SQL = ROOT / "deploy" / "clickhouse" / "cluster" / "schema.sql"
SCRIPT = Path(__file__).resolve().parent / "support" / "local_cluster.py"
MERGE_TREES = ("requests", "requests_1m_route", "requests_1m_consumer", "bench_runs",
               "audit_log", "ai_calls")  # fmt: skip


def run(cwd: Path, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=cwd,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def node_dir(tmp_path: Path, name: str, *, keeper: bool = False) -> Path:
    node = tmp_path / name
    node.mkdir()
    (node / "config.xml").write_text(config_xml(keeper=keeper))
    return node


# ----- every statement parses ----------------------------------------------------------


def test_every_cluster_statement_parses_with_on_cluster_and_replicated_engines(tmp_path):
    result = run(tmp_path, "format", str(CLUSTER_SQL))["statements"]
    assert len(result) > 20
    kinds = set()
    for item in result:
        sql, formatted = item["sql"], item["formatted"]
        assert item["again"] == formatted, sql[:200]
        head = formatted.split("\n", 1)[0]
        if formatted.startswith("INSERT INTO pygate.schema_migrations"):
            kinds.add("bookkeeping row")
            continue
        if formatted.startswith("INSERT"):
            # A backfill: through the Distributed tables, synchronously.
            assert "distributed_foreground_insert = 1" in formatted
            kinds.add("backfill")
            continue
        assert " ON CLUSTER pygate" in head, head
        if head.startswith("CREATE DATABASE"):
            continue
        name = re.match(r"(?:CREATE|ALTER)\D*? (pygate\.\w+)", formatted).group(1)
        if head.startswith(("CREATE TABLE", "CREATE OR REPLACE TABLE")):
            engine = re.search(r"\nENGINE = (\w+)", formatted).group(1)
            if name.endswith("_local") or name == "pygate.schema_migrations":
                assert engine.startswith("Replicated") and engine.endswith("MergeTree")
                assert "'{replica}'" in formatted or "'{shard}-{replica}'" in formatted
                kinds.add("replicated")
            else:
                assert engine == "Distributed", formatted
                assert f"AS {name}_local" in formatted
                assert (
                    f"Distributed('pygate', 'pygate', '{name[7:]}_local', cityHash64(" in formatted
                )
                kinds.add("distributed")
        elif head.startswith("CREATE MATERIALIZED VIEW"):
            assert re.search(r" TO pygate\.\w+_local\n", formatted), formatted
            assert re.search(r"FROM pygate\.requests_local\b", formatted)
            kinds.add("view")
        elif head.startswith("ALTER TABLE"):
            assert name.endswith("_local"), head
            kinds.add("alter")
        else:
            raise AssertionError(f"unexpected statement: {head}")
    assert kinds == {"bookkeeping row", "backfill", "replicated", "distributed", "view", "alter"}

    local_engines = {
        re.match(r"CREATE TABLE IF NOT EXISTS pygate\.(\w+)_local", i["formatted"]).group(1):
        re.search(r"\nENGINE = (\w+)", i["formatted"]).group(1)
        for i in result if re.match(r"CREATE TABLE IF NOT EXISTS pygate\.\w+_local", i["formatted"])
    }  # fmt: skip
    assert local_engines == {
        "requests": "ReplicatedMergeTree",
        "requests_1m_route": "ReplicatedAggregatingMergeTree",
        "requests_1m_consumer": "ReplicatedAggregatingMergeTree",
        "bench_runs": "ReplicatedMergeTree",
        "audit_log": "ReplicatedMergeTree",
        "ai_calls": "ReplicatedMergeTree",
    }


def test_no_statement_shards_by_rand():
    # A replay must split into the same per-shard blocks (README: dedup on a cluster).
    text = CLUSTER_SQL.read_text()
    keys = re.findall(r"Distributed\('pygate', 'pygate', '(\w+)', (.+)\)", text)
    assert keys and all(key.startswith("cityHash64(") for _, key in keys)
    assert dict(keys)["requests_local"] == "cityHash64(request_id)"
    assert dict(keys)["ai_calls_local"] == "cityHash64(request_id)"


# ----- the Replicated engines, created on a (test) Keeper --------------------------------


def test_replicated_tables_are_created_with_the_node_macros(tmp_path):
    node = node_dir(tmp_path, "ch-s1-r1", keeper=True)
    got = run(node, "replicated", str(node / "data"), str(CLUSTER_SQL))
    shard, replica = MACROS["shard"], MACROS["replica"]
    replicas = {row[0]: row[1:] for row in got["replicas"]}
    expected = {f"{t}_local": f"/clickhouse/tables/{shard}/pygate/{t}_local" for t in MERGE_TREES}
    assert {t: r[1] for t, r in replicas.items() if t != "schema_migrations"} == expected
    assert all(r[2] == replica for t, r in replicas.items() if t != "schema_migrations")
    # The bookkeeping: one replica set over every node, whatever the shard.
    assert replicas["schema_migrations"][1:3] == [
        "/clickhouse/tables/all/pygate/schema_migrations",
        f"{shard}-{replica}",
    ]
    engines = dict(got["engines"])
    path = "/clickhouse/tables/{shard}/pygate/requests_1m_route_local"
    assert engines["requests_1m_route_local"].startswith(
        f"ReplicatedAggregatingMergeTree('{path}', '{{replica}}')"
    )
    assert "replicated_deduplication_window = 1000" in engines["audit_log_local"]
    # What chDB cannot do: activate them (no interserver endpoint in clickhouse-local).
    assert all(r[3] == 1 for r in replicas.values())


# ----- the whole cluster path on one local node ----------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    rows = known_rows(now - timedelta(hours=3))
    rows_file = root / "rows.jsonl"
    rows_file.write_text("\n".join(json.dumps(r) for r in rows))
    out = {}
    for kind in ("plain", "cluster"):
        node = node_dir(root, kind)
        out[kind] = run(node, "build", str(node / "data"), kind, str(rows_file), now.isoformat())
    out["rows"] = len(rows)
    return out


def test_cluster_path_runs_every_statement_on_cluster(built):
    cluster = built["cluster"]
    assert cluster["applied"] == built["plain"]["applied"] and len(cluster["applied"]) >= 10
    assert cluster["applied_again"] == []
    ddl = [s for s in cluster["ran"] if re.match(r"(CREATE|ALTER)\b", s)]
    assert ddl and all(" ON CLUSTER pygate" in s.split("\n", 1)[0] for s in ddl)
    assert any("ALTER TABLE pygate.requests_local ON CLUSTER pygate MODIFY TTL" in s for s in ddl)


def test_local_tables_equal_the_one_server_schema(built):
    plain = {t[0]: t for t in built["plain"]["tables"]}
    cluster = {t[0]: t for t in built["cluster"]["tables"]}
    assert set(cluster) == set(plain) | {f"{t}_local" for t in MERGE_TREES}
    for name in MERGE_TREES:
        local = cluster[f"{name}_local"]
        # Engine, keys, TTL, codecs, indexes, settings, comments: all the same.
        assert local[2] == plain[name][2], name
        assert local[3].replace("_local", "") == plain[name][3], name
        assert cluster[name][1] == "Distributed"
        assert cluster[name][4] == plain[name][4], name  # the table comment
        # DESCRIBE: names, types, defaults, comments, codecs.
        assert built["cluster"]["describe"][name] == built["plain"]["describe"][name], name
    for view in ("requests_1m_route_mv", "requests_1m_consumer_mv"):
        assert cluster[view][3].replace("_local", "") == plain[view][3]
        assert "FROM pygate.requests_local" in cluster[view][3]
    assert cluster["schema_migrations"][2:4] == plain["schema_migrations"][2:4]


def test_replayed_insert_through_distributed_counts_once(built):
    for kind in ("plain", "cluster"):
        counts = built[kind]["counts"]
        assert counts == {
            "requests": built["rows"],
            "rollup_route": built["rows"],
            "rollup_consumer": built["rows"],
        }, kind


def test_reports_and_retention_are_unchanged(built):
    plain, cluster = built["plain"], built["cluster"]
    assert cluster["reports"] == plain["reports"]
    assert any(r.get("rows") for r in cluster["reports"].values())
    assert plain["retention"] == cluster["retention"] == [True, False]
    describe_ttl = [t[3] for t in cluster["tables"] if t[0] == "requests_local"][0]
    assert "toIntervalDay(7)" in describe_ttl


# ----- a migration of a shape the rewrite does not know fails here, not on a cluster -----

UNKNOWN_SHAPES = {
    "not a MergeTree": "CREATE TABLE IF NOT EXISTS pygate.x (a UInt8) ENGINE = Memory",
    "already replicated": (
        "CREATE TABLE IF NOT EXISTS pygate.x (a UInt8) "
        "ENGINE = ReplicatedMergeTree('/p', 'r') ORDER BY a"
    ),
    "no sort key": "CREATE TABLE IF NOT EXISTS pygate.x (a UInt8) ENGINE = MergeTree",
    "empty sort key": (
        "CREATE TABLE IF NOT EXISTS pygate.x (a UInt8) ENGINE = MergeTree ORDER BY tuple()"
    ),
    "another database": (
        "CREATE TABLE IF NOT EXISTS other.x (a UInt8) ENGINE = MergeTree ORDER BY a"
    ),
    "view without TO": "CREATE MATERIALIZED VIEW IF NOT EXISTS pygate.v AS SELECT 1",
    "alter of an unknown table": "ALTER TABLE pygate.nowhere ADD COLUMN b UInt8",
    "drop": "DROP TABLE pygate.requests",
    "insert values": "INSERT INTO pygate.requests VALUES (1)",
}


@pytest.mark.parametrize("shape", sorted(UNKNOWN_SHAPES))
def test_unknown_statement_shapes_are_refused(shape):
    from pygate.logstore.cluster_ddl import ClusterDDLError, ClusterSchema

    with pytest.raises(ClusterDDLError):
        ClusterSchema("pygate").rewriter().rewrite(UNKNOWN_SHAPES[shape])


def test_engine_arguments_follow_the_keeper_path():
    from pygate.logstore.cluster_ddl import ClusterSchema

    rewriter = ClusterSchema("pygate", "/ch/t").rewriter()
    local, dist = rewriter.rewrite(
        "CREATE TABLE IF NOT EXISTS pygate.x (v UInt32, k String COMMENT 'a (b), c')\n"
        "ENGINE = ReplacingMergeTree(v)\nORDER BY k\nCOMMENT 'x''s table'"
    )
    assert (
        "ENGINE = ReplicatedReplacingMergeTree('/ch/t/{shard}/pygate/x_local', '{replica}', v)"
        in local
    )
    assert dist.endswith("cityHash64(k))\nCOMMENT 'x''s table'")
