"""Every encoder writes exactly the columns of the migrated store, for every table pygate
writes row by row: pygate.requests from the core's column table (RowBinary, JSONEachRow,
Native and a log plugin's record) and the Python RowBinary tables (pygate/logstore/tables.py).

Real stores only: a freshly migrated chDB directory. Rows go in through the store's own
insert path and are read back as RowBinary, which must give the same bytes.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.client import get
from support.configs import route, simple_config
from support.net import wait_until

from pygate import _core
from pygate.logstore import open_store
from pygate.logstore.rowbinary import STRING_TYPES, RowBinaryTable
from pygate.logstore.tables import PYTHON_TABLES

TESTS_DIR = Path(__file__).parent
REQUESTS = "pygate.requests"
# Written as JSONEachRow by name (pygate bench --save), not by a column-order encoder.
BY_NAME = {"pygate.bench_runs"}
CORE_CONFIG = {
    "listen": "127.0.0.1:0",
    "workers": 1,
    "upstreams": [{"name": "u", "targets": [{"addr": "127.0.0.1:9"}]}],
    "consumers": [],
    "routes": [{"name": "r", "paths": ["/r"], "upstream": "u"}],
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    store = open_store(f"chdb://{tmp_path_factory.mktemp('columns') / 'data'}")
    store.migrate()
    yield store
    store.close()


@pytest.fixture(scope="module")
def hot() -> _core.HotPaths:
    """The core's per-request functions, with their typical call record."""
    return _core.HotPaths(json.dumps(CORE_CONFIG))


def describe(store, table: str) -> list[tuple[str, str]]:
    text = store.query(f"DESCRIBE TABLE {table}", "TSVRaw").decode()
    return [(line.split("\t")[0], line.split("\t")[1]) for line in text.splitlines()]


def read_back(store, table: str, key: str, value: str) -> bytes:
    return store.query(f"SELECT * FROM {table} WHERE {key} = '{value}'", "RowBinary")


def test_the_core_encodes_the_columns_of_pygate_requests(store) -> None:
    assert _core.requests_columns() == describe(store, REQUESTS)


@pytest.mark.parametrize("table", PYTHON_TABLES, ids=lambda t: t.name)
def test_each_python_table_is_declared_as_migrated(store, table: RowBinaryTable) -> None:
    assert list(table.columns) == describe(store, table.name)


def test_every_table_with_rows_is_declared(store) -> None:
    # Rollups are fed by materialized views; schema_migrations is the migrations' own.
    text = store.query(
        "SELECT concat(table_schema, '.', table_name) FROM information_schema.tables"
        " WHERE table_schema = 'pygate' AND table_type = 'BASE TABLE'"
        " AND table_name != 'schema_migrations' AND NOT startsWith(table_name, 'requests_1m_')",
        "TSVRaw",
    ).decode()
    declared = {REQUESTS, *BY_NAME, *(t.name for t in PYTHON_TABLES)}
    assert set(text.split()) == declared


def sample_row(table: RowBinaryTable, key: str) -> dict[str, object]:
    """A distinct value for every column: a column out of place cannot read back equal."""
    numbers = {"UInt8": 7, "UInt16": 1234, "UInt32": 123_456, "UInt64": 2**40, "Float32": 2.5}
    row: dict[str, object] = {}
    for i, (column, type_) in enumerate(table.columns):
        if type_ in STRING_TYPES:
            row[column] = f"{key}-{column}-é{i}"  # UTF-8: the length prefix counts bytes
        elif type_ == "DateTime64(3)":
            row[column] = int(time.time() * 1000)  # recent: inside the tables' TTL
        elif type_ == "Bool":
            row[column] = i % 2 == 0
        elif type_ == "Float64":
            row[column] = 0.125 + i
        else:
            row[column] = numbers[type_] + i
    return row


@pytest.mark.parametrize("table", PYTHON_TABLES, ids=lambda t: t.name)
def test_python_rows_read_back_byte_for_byte(store, table: RowBinaryTable) -> None:
    key = uuid.uuid4().hex
    row = sample_row(table, key)
    first_string = next(c for c, t in table.columns if t in STRING_TYPES)
    data = bytes(table.encode(row))
    store.insert_row_binary(data, f"columns-{key}", table.name)
    assert read_back(store, table.name, first_string, str(row[first_string])) == data


def test_core_rows_read_back_byte_for_byte(store, hot: _core.HotPaths) -> None:
    # The chDB store turns RowBinary into a Native block (the core's Native encoder)
    # before inserting it, so this covers both binary encoders.
    data = hot.sample_record("RowBinary")
    request_id = json.loads(hot.sample_record("JSONEachRow"))["request_id"]
    store.insert_row_binary(data, f"columns-{request_id}", REQUESTS)
    assert read_back(store, REQUESTS, "request_id", request_id) == data


def test_core_json_keys_are_the_columns_in_order(hot: _core.HotPaths) -> None:
    record = json.loads(hot.sample_record("JSONEachRow"))
    assert list(record) == [name for name, _ in _core.requests_columns()]


@pytest.fixture
def plugin_path() -> Iterator[None]:
    """The gateway subprocess imports support.plugins_demo from tests/."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]))
        yield


def test_a_log_plugin_gets_the_columns_by_name(
    plugin_path, upstreams, make_gateway, tmp_path: Path
) -> None:
    log_file = tmp_path / "records.jsonl"
    cfg = simple_config(upstreams)
    plugins = {"support.plugins_demo:RecordToFile": {"path": str(log_file)}}
    cfg["routes"].append(route("logged", ["/logged/*"], "echo", plugins=plugins))
    gw = make_gateway(cfg)
    assert get(gw.url("/logged/x")).status == 200
    line = wait_until(
        lambda: log_file.exists() and log_file.read_text().strip(), 30, what="the record"
    )
    record = json.loads(line.splitlines()[0])
    assert list(record) == [name for name, _ in _core.requests_columns()] + ["ts_ms"]
    assert record["ts"] == record["ts_ms"] / 1000
    assert (record["route"], record["path"], record["status"]) == ("logged", "/logged/x", 200)
