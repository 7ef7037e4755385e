"""The two log sinks (embedded chDB, ClickHouse server via clickhouse-connect).

Real stores only: chDB data directories under tmp_path, and `pygate logs serve`
processes for the server sink, reached with the real clickhouse-connect client.
Rows are RowBinary laid out by the core's column table (see `encode_row`).
"""

from __future__ import annotations

import array
import json
import time
import uuid
from pathlib import Path

import pytest
from support.client import get
from support.configs import simple_config
from support.logs_server import LogsServer
from support.net import wait_until

from pygate import _core
from pygate.logstore import BatchRejected, open_store
from pygate.logstore.batch import Batch
from pygate.logstore.dead_letter import INDEX_FILE, ROWS_FILE, DeadLetter
from pygate.logstore.delivery import deliver
from pygate.logstore.rowbinary import RowBinaryTable, put_string

MIGRATIONS = Path(__file__).resolve().parent.parent / "pygate" / "logstore" / "migrations"


# The core's own column table: these rows are laid out as the core lays out its records.
REQUESTS_ROWS = RowBinaryTable("pygate.requests", _core.requests_columns())


def _string(value: str) -> bytes:
    out = bytearray()
    put_string(out, value)
    return bytes(out)


def encode_row(
    request_id: str, *, status: int = 200, route: str = "r", consumer: str = "c"
) -> bytes:
    """One pygate.requests row in RowBinary."""
    row = {
        "ts": int(time.time() * 1000),
        "request_id": request_id,
        "route": route,
        "consumer": consumer,
        "method": "GET",
        "host": "example.test",
        "path": "/p",
        "status": status,
        "latency_ms": 1.5,
        "upstream_latency_ms": 1.0,
        "bytes_in": 100,
        "bytes_out": 200,
        "client_ip": "127.0.0.1",
        "upstream_addr": "127.0.0.1:9",
        "error_kind": "",
        "rate_limited": False,
    }
    return bytes(REQUESTS_ROWS.encode(row))


def make_batch(rows: list[bytes]) -> Batch:
    ends = array.array("I")
    offset = 0
    for row in rows:
        offset += len(row)
        ends.append(offset)
    return Batch.new(len(rows), b"".join(rows), ends.tobytes())


def count_ids(store, prefix: str) -> int:
    sql = f"SELECT count() FROM pygate.requests WHERE startsWith(request_id, '{prefix}')"
    return int(store.query(sql, "TSVRaw"))


@pytest.fixture
def chdb_store(tmp_path: Path):
    store = open_store(f"chdb://{tmp_path / 'data'}")
    store.migrate()
    yield store
    store.close()


# ----- chDB sink ------------------------------------------------------------------------


def test_retention_change_reaches_every_per_call_table(chdb_store):
    assert chdb_store.set_retention(30) is False  # created with 30: nothing to rewrite
    assert chdb_store.set_retention(7) is True
    for table in ("pygate.requests", "pygate.ai_calls"):
        ddl = chdb_store.query_rows(f"SHOW CREATE TABLE {table}").rows[0][0]
        assert "TTL toDateTime(ts) + toIntervalDay(7)" in ddl, table


def test_migrations_create_documented_schema_with_rollups(chdb_store):
    tables = chdb_store.query_rows(
        "SELECT name, engine, comment FROM system.tables WHERE database = 'pygate' ORDER BY name"
    )
    by_name = {row[0]: row for row in tables.rows}
    assert by_name["requests"][1] == "MergeTree"
    assert by_name["requests_1m_route"][1] == "AggregatingMergeTree"
    assert by_name["requests_1m_consumer"][1] == "AggregatingMergeTree"
    assert by_name["requests_1m_route_mv"][1] == "MaterializedView"
    assert by_name["requests_1m_consumer_mv"][1] == "MaterializedView"
    assert by_name["bench_runs"][1] == "MergeTree"
    assert "rollups" in by_name["requests"][2]
    ddl = chdb_store.query("SHOW CREATE TABLE pygate.requests", "TSVRaw").decode()
    for fragment in (
        "PARTITION BY toYYYYMMDD(ts)",
        "ORDER BY (route, ts)",
        "TTL toDateTime(ts) + toIntervalDay(30)",
        "`route` LowCardinality(String)",
        "CODEC(DoubleDelta, ZSTD(1))",
        "non_replicated_deduplication_window = 1000",
        "request_id_bloom",
    ):
        assert fragment in ddl, fragment
    undocumented = chdb_store.query_rows(
        "SELECT name FROM system.columns WHERE database = 'pygate' AND table = 'requests' "
        "AND comment = ''"
    )
    assert undocumented.rows == []
    versions = chdb_store.query_rows("SELECT version FROM pygate.schema_migrations ORDER BY 1")
    shipped = sorted(p.name[:3] for p in MIGRATIONS.glob("*.sql"))
    assert len(shipped) >= 6  # requests, codecs, rollups, bench runs, audit log, AI calls
    assert [row[0][:3] for row in versions.rows] == shipped
    assert chdb_store.migrate() == []  # applied once


def test_retried_batch_is_stored_once_in_table_and_rollups(chdb_store):
    prefix = f"dedup-{uuid.uuid4().hex[:6]}-"
    batch = make_batch([encode_row(f"{prefix}{i}", route="dedup") for i in range(50)])
    for _attempt in range(3):  # e.g. the first attempt timed out after the store had it
        chdb_store.insert_row_binary(batch.data, batch.token)
    assert count_ids(chdb_store, prefix) == 50
    rollup = chdb_store.query_rows(
        "SELECT sum(requests), sum(status_2xx), sum(bytes_out) FROM pygate.requests_1m_route "
        "WHERE route = 'dedup'"
    )
    assert rollup.rows == [[50, 50, 50 * 200]]
    consumer = chdb_store.query_rows("SELECT sum(requests) FROM pygate.requests_1m_consumer")
    assert consumer.rows == [[50]]
    # Another token is another batch: the same bytes are stored again.
    chdb_store.insert_row_binary(batch.data, uuid.uuid4().hex)
    assert count_ids(chdb_store, prefix) == 100


def test_malformed_row_costs_only_itself(chdb_store, tmp_path: Path):
    prefix = f"trunc-{uuid.uuid4().hex[:6]}-"
    rows = [encode_row(f"{prefix}{i}") for i in range(1000)]
    # A corrupt length prefix on the request_id (4 GiB): ClickHouse refuses it whatever
    # bytes follow, so the test does not depend on the timestamps' values. (A merely
    # truncated row can, by chance, parse on into the next rows.)
    rows[617] = rows[617][:8] + b"\xff\xff\xff\xff\x0f" + rows[617][9:]
    batch = make_batch(rows)
    with pytest.raises(BatchRejected):
        chdb_store.insert_row_binary(batch.data, batch.token)

    outcome = deliver(chdb_store, batch)
    assert outcome.delivered
    assert outcome.rows_written == 999
    assert [piece.data for piece, _ in outcome.refused] == [rows[617]]
    # Found while re-encoding the rows as Native for chDB (a server answers Code: 131).
    assert "the data ends inside column request_id" in outcome.refused[0][1]
    assert outcome.inserts < 30  # bisection, not one insert per row
    assert count_ids(chdb_store, prefix) == 999
    stored = {r[0] for r in chdb_store.query_rows("SELECT request_id FROM pygate.requests").rows}
    assert f"{prefix}617" not in stored and f"{prefix}618" in stored

    # The same batch delivered again (a replay after a crash) adds nothing.
    again = deliver(chdb_store, batch)
    assert again.rows_written == 999 and again.rows_refused == 1
    assert count_ids(chdb_store, prefix) == 999

    dead = DeadLetter(str(tmp_path))
    dead.quarantine(outcome.refused)
    kept = (tmp_path / ROWS_FILE).read_bytes()
    assert kept == rows[617]
    entry = json.loads((tmp_path / INDEX_FILE).read_text().splitlines()[0])
    assert (entry["offset"], entry["length"]) == (0, len(rows[617]))
    assert entry["batch"].startswith(batch.token + "/")  # the piece's derived token


def test_constraint_violation_is_a_refusal_not_silent_loss(chdb_store):
    """chDB's streaming inserter reports success for blocks a constraint refuses; ours
    must raise, so the batch is bisected instead of vanishing."""
    chdb_store._execute("ALTER TABLE pygate.requests ADD CONSTRAINT no_teapots CHECK status != 418")
    prefix = f"teapot-{uuid.uuid4().hex[:6]}-"
    rows = [encode_row(f"{prefix}{i}", status=418 if i % 7 == 3 else 200) for i in range(40)]
    batch = make_batch(rows)
    with pytest.raises(BatchRejected, match="VIOLATED_CONSTRAINT"):
        chdb_store.insert_row_binary(batch.data, batch.token)
    outcome = deliver(chdb_store, batch)
    teapots = sum(1 for i in range(40) if i % 7 == 3)
    assert (outcome.rows_written, outcome.rows_refused) == (40 - teapots, teapots)
    assert count_ids(chdb_store, prefix) == 40 - teapots


def test_gateway_quarantines_only_the_refused_records(make_gateway, upstreams, tmp_path):
    """End to end: a store that refuses some real records (a constraint on status)."""
    config = simple_config(upstreams, log={"store": "chdb://./data", "batch_size": 500})
    gateway = make_gateway(config, name="gw")
    assert gateway.stop() == 0
    _add_constraint(gateway.workdir / "data")
    gateway.start()

    tag = uuid.uuid4().hex[:8]
    sent = {}
    for i in range(30):
        code = 418 if i % 10 == 4 else 200
        rid = f"q-{tag}-{i}"
        resp = get(gateway.url(f"/echo/x?mode=status&code={code}"), headers={"X-Request-Id": rid})
        assert resp.status == code
        sent[rid] = code

    def settled() -> dict:
        status = gateway.status()
        done = status["log_rows_written"] + status["log_rows_quarantined"]
        return status if done >= 30 and status["records_pending"] == 0 else {}

    status = wait_until(settled, 60, what="all records written or quarantined")
    assert status["log_rows_quarantined"] == 3
    assert status["log_rows_written"] == 27
    stored = {
        row["request_id"] for row in gateway.logs_query("SELECT request_id FROM pygate.requests")
    }
    assert stored == {rid for rid, code in sent.items() if code == 200}

    index = (gateway.workdir / "data-spool" / INDEX_FILE).read_text().splitlines()
    assert len(index) == 3 and all("VIOLATED_CONSTRAINT" in line for line in index)
    dead_rows = (gateway.workdir / "data-spool" / ROWS_FILE).read_bytes()
    for rid, code in sent.items():
        assert (_string(rid) in dead_rows) == (code == 418)  # length-prefixed: exact id
    metrics = gateway_metrics(gateway)
    assert "pygate_log_rows_quarantined_total 3" in metrics
    assert "pygate_log_rows_written_total 27" in metrics


def _add_constraint(data_dir: Path) -> None:
    # chDB allows one process per data directory: the gateway is stopped meanwhile.
    with open_store(f"chdb://{data_dir}") as store:
        store._execute("ALTER TABLE pygate.requests ADD CONSTRAINT no_teapots CHECK status != 418")


def gateway_metrics(gateway) -> str:
    import urllib.request

    request = urllib.request.Request(gateway.admin_url("/metrics"), headers=gateway.admin_headers())
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return resp.read().decode()


# ----- ClickHouse server sink (clickhouse-connect against `pygate logs serve`) ----------


@pytest.fixture
def store_server(tmp_path: Path):
    server = LogsServer(tmp_path / "store-server", allow_writes=True).start()
    yield server
    server.stop()
    server.kill()


def test_server_sink_writes_through_clickhouse_connect(make_gateway, upstreams, store_server):
    url = store_server.sink_url.replace("?compress=none", "")  # the default: lz4 inserts
    gateway = make_gateway(simple_config(upstreams, log={"store": url}), name="gw")
    tag = uuid.uuid4().hex[:8]
    for i in range(40):
        assert (
            get(gateway.url(f"/echo/{i}"), headers={"X-Request-Id": f"s-{tag}-{i}"}).status == 200
        )

    client = store_server.client()
    sql = f"SELECT count() FROM pygate.requests WHERE startsWith(request_id, 's-{tag}-')"
    wait_until(lambda: client.command(sql) == 40, 60, what="40 rows on the server")
    rollup = client.query(
        "SELECT sum(requests), sum(status_2xx) FROM pygate.requests_1m_route WHERE route = 'echo'"
    ).result_rows
    assert rollup == [(40, 40)]
    status = gateway.status()
    assert status["log_rows_written"] == 40 and status["log_rows_spooled"] == 0


def test_server_sink_bisects_a_malformed_batch(store_server):
    store = open_store(store_server.sink_url)
    try:
        store.migrate()
        prefix = f"srv-bad-{uuid.uuid4().hex[:6]}-"
        rows = [encode_row(f"{prefix}{i}") for i in range(200)]
        rows[50] = rows[50][:8] + b"\xff\xff\xff\xff\x0f" + rows[50][9:]  # see above
        batch = make_batch(rows)
        outcome = deliver(store, batch)
        assert outcome.delivered and (outcome.rows_written, outcome.rows_refused) == (199, 1)
        assert deliver(store, batch).rows_written == 199  # replayed: deduplicated
        assert count_ids(store, prefix) == 199
    finally:
        store.close()
