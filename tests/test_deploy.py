"""deploy/ for a real ClickHouse server: the schema SQL must be exactly what the
migrations build, and every Grafana panel's SQL must run (checked on chDB, the same
engine, after expanding the ClickHouse datasource plugin's macros).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_reports import known_rows

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = ROOT / "deploy" / "clickhouse" / "generate_schema.py"
SCHEMA = ROOT / "deploy" / "clickhouse" / "schema.sql"
GRAFANA = ROOT / "deploy" / "grafana" / "pygate-dashboard.json"


def run_python(code: str, *args: str) -> str:
    # chDB lets a process use one data directory: each store gets its own process.
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


_DESCRIBE = """
import json, sys
from chdb import session
s = session.Session(sys.argv[1] + "?mode=ro")
def rows(sql):
    return json.loads(s.query(sql, "JSONCompact").bytes())["data"]
print(json.dumps({
    "tables": rows("SELECT name, engine_full, create_table_query FROM system.tables "
                   "WHERE database = 'pygate' ORDER BY name"),
    "migrations": rows("SELECT version FROM pygate.schema_migrations ORDER BY version"),
}))
"""

_APPLY_SCHEMA_THEN_MIGRATE = """
import json, sys
from chdb import session
from pygate.logstore import open_store
from pygate.logstore.schema_migrations import Migration
path, schema = sys.argv[1], open(sys.argv[2]).read()
writer = session.Session(path)
for statement in Migration("schema", schema).statements():
    writer.query(statement)
writer.cleanup()
with open_store("chdb://" + path) as store:
    print(json.dumps(store.migrate()))
"""

_MIGRATE = """
import sys
from pygate.logstore import open_store
with open_store("chdb://" + sys.argv[1]) as store:
    store.migrate()
"""


def test_schema_sql_is_generated_from_the_migrations():
    done = subprocess.run(
        [sys.executable, str(GENERATOR), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr


def test_schema_sql_builds_what_the_migrations_build(tmp_path):
    from_schema, migrated = tmp_path / "from-schema", tmp_path / "migrated"
    applied_after = json.loads(
        run_python(_APPLY_SCHEMA_THEN_MIGRATE, str(from_schema), str(SCHEMA))
    )
    # A gateway started on a server set up from schema.sql has nothing left to apply.
    assert applied_after == []
    run_python(_MIGRATE, str(migrated))
    expected = json.loads(run_python(_DESCRIBE, str(migrated)))
    got = json.loads(run_python(_DESCRIBE, str(from_schema)))
    assert got == expected
    names = [t[0] for t in got["tables"]]
    assert {
        "requests",
        "requests_1m_route",
        "requests_1m_consumer",
        "requests_1m_route_mv",
        "requests_1m_consumer_mv",
    } <= set(names)


# ----- Grafana ----------------------------------------------------------------------


def expand_macros(
    sql: str,
    start: datetime,
    end: datetime,
    interval_s: int,
    variables: dict[str, list[str] | str | None],
) -> str:
    """The grafana-clickhouse-datasource macros, expanded as the plugin documents them."""
    f, t = int(start.timestamp()), int(end.timestamp())
    f_ms, t_ms = f * 1000, t * 1000

    def conditional_all(match: re.Match) -> str:
        condition, var = match.group(1), match.group(2)
        return "1=1" if variables[var] is None else condition

    sql = re.sub(r"\$__conditionalAll\((.*?),\s*\$(\w+)\)", conditional_all, sql)
    sql = re.sub(
        r"\$__timeFilter_ms\(([^)]+)\)",
        rf"\1 >= fromUnixTimestamp64Milli({f_ms}) AND \1 <= fromUnixTimestamp64Milli({t_ms})",
        sql,
    )
    sql = re.sub(
        r"\$__timeFilter\(([^)]+)\)", rf"\1 >= toDateTime({f}) AND \1 <= toDateTime({t})", sql
    )
    sql = re.sub(
        r"\$__timeInterval\(([^)]+)\)",
        rf"toStartOfInterval(toDateTime(\1), INTERVAL {interval_s} second)",
        sql,
    )
    sql = sql.replace("$__fromTime_ms", f"fromUnixTimestamp64Milli({f_ms})")
    sql = sql.replace("$__toTime_ms", f"fromUnixTimestamp64Milli({t_ms})")
    sql = sql.replace("$__fromTime", f"toDateTime({f})").replace("$__toTime", f"toDateTime({t})")
    sql = sql.replace("$__interval_s", str(interval_s))

    def variable(match: re.Match) -> str:
        value = variables[match.group(1) or match.group(3)]
        values = value if isinstance(value, list) else [value or ""]
        if match.group(2) == "singlequote":
            return ",".join("'" + v.replace("'", "\\'") + "'" for v in values)
        return ",".join(values)

    sql = re.sub(r"\$\{(\w+)(?::(\w+))?\}|\$(\w+)", variable, sql)
    assert "$" not in sql, sql
    return sql


_RUN_PANELS = """
import json, sys
from chdb import session
from pygate.logstore import open_store
path, rows_file, queries = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
with open_store("chdb://" + path) as store:
    store.migrate()
writer = session.Session(path)
writer.query("INSERT INTO pygate.requests FORMAT JSONEachRow " + open(rows_file).read())
out = {}
for key, sql in queries.items():
    result = json.loads(writer.query(sql, "JSONCompact").bytes())
    out[key] = {"columns": [c["name"] for c in result["meta"]], "rows": result["data"]}
writer.cleanup()
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def grafana() -> dict:
    return json.loads(GRAFANA.read_text())


def test_grafana_dashboard_shape(grafana):
    assert grafana["uid"] and grafana["title"]
    variables = {v["name"]: v for v in grafana["templating"]["list"]}
    assert variables["datasource"]["query"] == "grafana-clickhouse-datasource"
    titles = [p["title"] for p in grafana["panels"]]
    assert len(titles) == len(set(titles)) >= 8
    for panel in grafana["panels"]:
        for target in panel["targets"]:
            assert target["datasource"]["type"] == "grafana-clickhouse-datasource"
            assert target["editorType"] == "sql"
            assert "$__timeFilter" in target["rawSql"], panel["title"]


@pytest.mark.parametrize("route_choice", [None, ["orders"]], ids=["all-routes", "one-route"])
def test_every_grafana_panel_runs_on_chdb(grafana, tmp_path, route_choice):
    # On a whole hour, so the 5-minute buckets line up with the known rows.
    t0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    rows = known_rows(t0)
    in_range = [r for r in rows if r["request_id"].startswith("known-")]
    rows_file = tmp_path / "rows.jsonl"
    rows_file.write_text("\n".join(json.dumps(r) for r in rows))
    start, end = t0, t0 + timedelta(minutes=59, seconds=59)
    variables = {"route": route_choice, "request_id": "known-042"}
    queries = {
        panel["title"]: expand_macros(panel["targets"][0]["rawSql"], start, end, 300, variables)
        for panel in grafana["panels"]
    }
    for var in grafana["templating"]["list"]:
        if var["type"] == "query":
            queries[f"variable {var['name']}"] = expand_macros(
                var["query"], start, end, 300, variables
            )
    results = json.loads(
        run_python(_RUN_PANELS, str(tmp_path / "data"), str(rows_file), json.dumps(queries))
    )

    selected = [r for r in in_range if route_choice is None or r["route"] in route_choice]
    by_class = results["Requests by status class"]
    assert sum(sum(row[1:]) for row in by_class["rows"]) == len(selected)
    # 5-minute buckets over the 40 minutes of known rows.
    assert len(by_class["rows"]) == 8
    assert [r[0] for r in results["variable route"]["rows"]] == ["", "items", "orders"]
    [record] = results["Request by id"]["rows"]
    assert record[1] == "known-042"
    errors = results["4xx / 5xx by status"]
    assert sum(r[2] for r in errors["rows"]) == sum(r["status"] >= 400 for r in selected)
    for title, result in results.items():
        assert result["rows"], f"panel {title!r} returned no rows"
