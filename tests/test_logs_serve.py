"""`pygate logs serve`: the chDB log store over ClickHouse's HTTP interface.

Everything talks to a real `python -m pygate logs serve` process: the real
clickhouse-connect client (queries, Native inserts, RowBinary raw inserts) and curl
(formats, errors, auth, compression), only on 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import shutil
import struct
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import clickhouse_connect
import pytest
import yaml
from clickhouse_connect.driver.exceptions import DatabaseError
from support.logs_server import LogsServer

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")

WRITER = ("alice", "alice-secret")  # may write (inherits --allow-writes)
READER = ("bob", "bob-secret")  # allow_writes: false, even on a writable server
USERS = [
    {"name": WRITER[0], "password": WRITER[1]},
    {"name": READER[0], "password": READER[1], "allow_writes": False},
]
REQUEST_COLUMNS = [
    ("ts", "DateTime64(3)"),
    ("request_id", "String"),
    ("route", "LowCardinality(String)"),
    ("consumer", "LowCardinality(String)"),
    ("method", "LowCardinality(String)"),
    ("host", "LowCardinality(String)"),
    ("path", "String"),
    ("status", "UInt16"),
    ("latency_ms", "Float32"),
    ("upstream_latency_ms", "Float32"),
    ("bytes_in", "UInt64"),
    ("bytes_out", "UInt64"),
    ("client_ip", "String"),
    ("upstream_addr", "LowCardinality(String)"),
    ("error_kind", "LowCardinality(String)"),
    ("rate_limited", "Bool"),
]
COLUMN_NAMES = [name for name, _ in REQUEST_COLUMNS]
# Recent, or the table's TTL (log.retention_days) drops the rows as they are written;
# whole milliseconds, as DateTime64(3) stores them.
_NOW = dt.datetime.now(dt.UTC).replace(tzinfo=None)
RECENT = _NOW.replace(microsecond=_NOW.microsecond // 1000 * 1000) - dt.timedelta(minutes=5)


def _start(server: LogsServer):
    try:
        server.start()
    except Exception:
        print(server.log_text()[-4000:])
        server.kill()
        raise
    return server


# Writers may INSERT into pygate's tables only (no DDL through logs serve), so the
# tables the tests write besides pygate.requests exist before the server starts.
CHECKED_TABLE = "pygate.test_checked"  # refuses n >= 10
NUMBERS_TABLE = "pygate.test_numbers"
PAIRS_TABLE = "pygate.test_pairs"


@pytest.fixture(scope="module")
def writable(tmp_path_factory: pytest.TempPathFactory):
    """A server with writes allowed; bob is read-only by his own setting."""
    server = LogsServer(
        tmp_path_factory.mktemp("logs-serve-rw"),
        {"log": {"serve": {"users": USERS}}},
        allow_writes=True,
    )
    server.create_in_store(
        "CREATE DATABASE IF NOT EXISTS pygate",
        f"CREATE TABLE {CHECKED_TABLE} (n UInt32, CONSTRAINT small CHECK n < 10) "
        "ENGINE = MergeTree ORDER BY n",
        f"CREATE TABLE {NUMBERS_TABLE} (tag String, a UInt32) ENGINE = MergeTree ORDER BY a",
        f"CREATE TABLE {PAIRS_TABLE} (tag String, a UInt32, s String) "
        "ENGINE = MergeTree ORDER BY a",
    )
    yield _start(server)
    server.stop()


@pytest.fixture(scope="module")
def read_only(writable: LogsServer, tmp_path_factory: pytest.TempPathFactory):
    """A read-only server (no --allow-writes) for the default user, on a fresh store.

    chDB allows one process per data directory, so it gets a copy of a migrated store
    made by a short-lived writable server.
    """
    workdir = tmp_path_factory.mktemp("logs-serve-ro")
    seed = _start(LogsServer(workdir, allow_writes=True))
    client = clickhouse_connect.get_client(host="127.0.0.1", port=seed.port)
    client.insert("pygate.requests", [request_row("ro-seed-1")], column_names=COLUMN_NAMES)
    client.close()
    assert seed.stop() == 0
    server = LogsServer(workdir, allow_writes=False, config_path=seed.config_path)
    yield _start(server)
    server.stop()


def client_for(server: LogsServer, user: tuple[str, str] = WRITER, **kw):
    return clickhouse_connect.get_client(
        host="127.0.0.1",
        port=server.port,
        username=user[0],
        password=user[1],
        database="pygate",
        **kw,
    )


def request_row(request_id: str, status: int = 200, route: str = "api", **over) -> list:
    values = {
        "ts": RECENT,
        "request_id": request_id,
        "route": route,
        "consumer": "carol",
        "method": "GET",
        "host": "api.example.com",
        "path": f"/items/{request_id}",
        "status": status,
        "latency_ms": 12.5,
        "upstream_latency_ms": 10.25,
        "bytes_in": 120,
        "bytes_out": 3456,
        "client_ip": "127.0.0.1",
        "upstream_addr": "127.0.0.1:9001",
        "error_kind": "",
        "rate_limited": False,
        **over,
    }
    return [values[name] for name in COLUMN_NAMES]


# ----- RowBinary, written by hand as the gateway's core writes it ---------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _rowbinary_value(value, ch_type: str) -> bytes:
    if ch_type == "DateTime64(3)":
        epoch = dt.datetime(1970, 1, 1)
        return struct.pack("<q", round((value - epoch).total_seconds() * 1000))
    if ch_type.endswith("String)") or ch_type == "String":
        data = value.encode()
        return _varint(len(data)) + data
    formats = {"UInt16": "<H", "UInt64": "<Q", "Float32": "<f", "Bool": "<?"}
    return struct.pack(formats[ch_type], value)


def rowbinary(rows: list[list]) -> bytes:
    return b"".join(
        _rowbinary_value(value, ch_type)
        for row in rows
        for value, (_, ch_type) in zip(row, REQUEST_COLUMNS, strict=True)
    )


# ----- curl ---------------------------------------------------------------------------


@dataclass
class CurlResponse:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()

    def exception_code(self) -> str | None:
        return self.headers.get("x-clickhouse-exception-code")


def curl(url: str, *args: str, data: bytes | None = None) -> CurlResponse:
    """Run curl; `data` is POSTed as-is (--data-binary). The body is kept as bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        body_path = Path(tmp) / "body"
        command = ["curl", "-sS", "--noproxy", "*", "-D", "-", "-o", str(body_path), *args]
        if data is not None:
            command += ["--data-binary", "@-"]
        done = subprocess.run(command + [url], input=data, capture_output=True, timeout=120)
        assert done.returncode == 0, f"curl failed: {done.stderr.decode()}"
        body = body_path.read_bytes() if body_path.exists() else b""
    head = done.stdout.decode("latin-1").strip().split("\r\n\r\n")[-1]
    lines = head.split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return CurlResponse(int(lines[0].split()[1]), headers, body)


def query_url(server: LogsServer, sql: str | None = None, **params: str) -> str:
    if sql is not None:
        params["query"] = sql
    return server.url + ("?" + urlencode(params) if params else "")


def auth(user: tuple[str, str]) -> tuple[str, str]:
    return ("-u", f"{user[0]}:{user[1]}")


# ----- health and headers ---------------------------------------------------------------


def test_ping_and_root_answer_ok(writable: LogsServer):
    for path in ("ping", "", "replicas_status"):
        resp = curl(writable.url + path)
        assert (resp.status, resp.body) == (200, b"Ok.\n"), path
    assert curl(writable.url + "nowhere").status == 404


def test_get_query_answers_with_clickhouse_headers(writable: LogsServer):
    resp = curl(query_url(writable, "SELECT version(), 1 + 1", query_id="qid-123"), *auth(WRITER))
    assert resp.status == 200, resp.body
    version, two = resp.text.rstrip("\n").split("\t")
    assert two == "2" and version.count(".") >= 2
    assert resp.headers["x-clickhouse-query-id"] == "qid-123"
    assert resp.headers["x-clickhouse-format"] == "TabSeparated"
    assert resp.headers["content-type"].startswith("text/tab-separated-values")
    assert resp.headers["x-clickhouse-timezone"]
    assert resp.headers["x-clickhouse-server-display-name"]
    summary = json.loads(resp.headers["x-clickhouse-summary"])
    assert summary["read_rows"] == "1" and summary["written_rows"] == "0"
    assert int(summary["elapsed_ns"]) > 0
    generated = curl(query_url(writable, "SELECT 1"), *auth(WRITER))
    uuid.UUID(generated.headers["x-clickhouse-query-id"])  # one per query when not given


# ----- clickhouse-connect ---------------------------------------------------------------


def test_clickhouse_connect_connects_and_queries(writable: LogsServer):
    client = client_for(writable)
    assert client.server_version.count(".") >= 2
    assert client.command("SELECT 40 + 2") == 42
    result = client.query(
        "SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY name"
    )
    assert "requests" in result.result_columns[0]
    typed = client.query(
        "SELECT {n:UInt32} * 2 AS n, {s:String} AS s, "
        "toDateTime64('2026-01-02 03:04:05.678', 3) AS t",
        parameters={"n": 21, "s": "it's"},
    )
    assert typed.result_rows == [(42, "it's", dt.datetime(2026, 1, 2, 3, 4, 5, 678000))]
    assert typed.column_types[0].name == "UInt64"
    client.close()


def test_clickhouse_connect_insert_native_then_read_back(writable: LogsServer):
    client = client_for(writable)
    tag = uuid.uuid4().hex[:8]
    rows = [
        request_row(f"native-{tag}-1"),
        request_row(f"native-{tag}-2", status=503, error_kind="upstream_unavailable"),
        request_row(f"native-{tag}-3", status=429, rate_limited=True, consumer=""),
    ]
    summary = client.insert("requests", rows, column_names=COLUMN_NAMES)
    assert summary.written_rows >= len(rows)  # materialized views add their own writes
    got = client.query(
        f"SELECT {', '.join(COLUMN_NAMES)} FROM requests WHERE request_id LIKE %(p)s "
        "ORDER BY request_id",
        parameters={"p": f"native-{tag}-%"},
    )
    assert [list(row) for row in got.result_rows] == rows
    client.close()


def test_clickhouse_connect_raw_insert_rowbinary_with_dedup_token(writable: LogsServer):
    client = client_for(writable)
    tag = uuid.uuid4().hex[:8]
    rows = [request_row(f"rb-{tag}-{i}", status=200 + i) for i in range(50)]
    block = rowbinary(rows)
    token = {"insert_deduplication_token": f"batch-{tag}"}
    for _ in range(2):  # a retried batch: the token makes the second insert a no-op
        client.raw_insert(
            "pygate.requests", COLUMN_NAMES, insert_block=block, fmt="RowBinary", settings=token
        )
    count, statuses = client.query(
        "SELECT count(), sum(status) FROM requests WHERE startsWith(request_id, %(p)s)",
        parameters={"p": f"rb-{tag}-"},
    ).result_rows[0]
    assert (count, statuses) == (50, sum(200 + i for i in range(50)))
    client.close()


def test_a_refused_block_is_an_error_not_a_silent_loss(writable: LogsServer):
    """chDB's streaming inserter reports success for a block the table refuses; the
    server must not: the client gets the constraint error and no row is stored."""
    client = client_for(writable)
    before = client.command(f"SELECT count() FROM {CHECKED_TABLE}")
    with pytest.raises(DatabaseError) as err:
        client.insert(CHECKED_TABLE, [[1], [99]], column_names=["n"])
    assert "469" in str(err.value) or "VIOLATED_CONSTRAINT" in str(err.value)
    assert client.command(f"SELECT count() FROM {CHECKED_TABLE}") == before
    client.insert(CHECKED_TABLE, [[1], [2]], column_names=["n"])
    assert client.command(f"SELECT count() FROM {CHECKED_TABLE}") == before + 2
    client.close()


def test_clickhouse_connect_read_only_user_cannot_write(writable: LogsServer):
    client = client_for(writable, READER)
    assert client.command("SELECT count() FROM requests") >= 0
    with pytest.raises(DatabaseError) as err:
        client.insert("requests", [request_row("bob-was-here")], column_names=COLUMN_NAMES)
    assert err.value.code == 164 and "READONLY" in str(err.value)
    with pytest.raises(DatabaseError) as err:
        client.command("CREATE TABLE default.bob_table (a UInt8) ENGINE = Memory")
    assert err.value.code == 164
    client.close()


def test_clickhouse_connect_wrong_password_fails_to_connect(writable: LogsServer):
    with pytest.raises(DatabaseError) as err:
        client_for(writable, (WRITER[0], "not-the-password"))
    assert err.value.code == 516


# ----- curl: formats ------------------------------------------------------------------


FORMAT_SQL = "SELECT number AS n, concat('v', toString(number)) AS s FROM numbers(3)"


@pytest.mark.parametrize(
    ("fmt", "content_type", "expected"),
    [
        ("TSV", "text/tab-separated-values", b"0\tv0\n1\tv1\n2\tv2\n"),
        ("TabSeparatedWithNames", "text/tab-separated-values", b"n\ts\n0\tv0\n1\tv1\n2\tv2\n"),
        ("CSV", "text/csv", b'0,"v0"\n1,"v1"\n2,"v2"\n'),
        ("CSVWithNames", "text/csv", b'"n","s"\n0,"v0"\n1,"v1"\n2,"v2"\n'),
    ],
)
def test_curl_text_formats(writable: LogsServer, fmt: str, content_type: str, expected: bytes):
    resp = curl(query_url(writable, f"{FORMAT_SQL} FORMAT {fmt}"), *auth(WRITER))
    assert resp.status == 200, resp.body
    assert resp.body == expected
    assert resp.headers["x-clickhouse-format"] == fmt
    assert resp.headers["content-type"].startswith(content_type)


def test_curl_json_formats_and_default_format(writable: LogsServer):
    doc = json.loads(curl(query_url(writable, f"{FORMAT_SQL} FORMAT JSON"), *auth(WRITER)).body)
    assert [c["name"] for c in doc["meta"]] == ["n", "s"]
    # chDB does not quote 64-bit integers in JSON (ClickHouse servers do by default).
    assert doc["data"] == [{"n": 0, "s": "v0"}, {"n": 1, "s": "v1"}, {"n": 2, "s": "v2"}]
    assert doc["rows"] == 3
    # No FORMAT clause: default_format decides, as on ClickHouse.
    resp = curl(query_url(writable, FORMAT_SQL, default_format="JSONCompact"), *auth(WRITER))
    assert resp.headers["x-clickhouse-format"] == "JSONCompact"
    assert resp.headers["content-type"].startswith("application/json")
    assert json.loads(resp.body)["data"] == [[0, "v0"], [1, "v1"], [2, "v2"]]


def test_curl_binary_formats(writable: LogsServer):
    native = curl(query_url(writable, "SELECT toUInt32(7) AS x FORMAT Native"), *auth(WRITER))
    assert native.headers["content-type"] == "application/octet-stream"
    # columns=1, rows=1, name "x", type "UInt32", then the little-endian value.
    assert native.body == b"\x01\x01\x01x\x06UInt32" + struct.pack("<I", 7)
    rowbin = curl(query_url(writable, "SELECT toUInt16(513) FORMAT RowBinary"), *auth(WRITER))
    assert rowbin.body == struct.pack("<H", 513)
    with_names = curl(
        query_url(writable, "SELECT toUInt8(5) AS v FORMAT RowBinaryWithNamesAndTypes"),
        *auth(WRITER),
    )
    assert with_names.body == b"\x01\x01v\x05UInt8\x05"


def test_go_client_style_default_format_native(writable: LogsServer):
    # clickhouse-go (Grafana's ClickHouse datasource over HTTP) puts default_format=Native
    # on the URL and sends bare SQL in the body, with basic auth.
    resp = curl(
        query_url(writable, database="pygate", default_format="Native"),
        *auth(WRITER),
        data=b"SELECT toUInt8(1) AS `1`",
    )
    assert resp.headers["x-clickhouse-format"] == "Native"
    assert resp.body == b"\x01\x01\x011\x05UInt8\x01"


def test_clickhouse_connect_form_encoded_queries(writable: LogsServer):
    client = client_for(writable, form_encode_query_params=True)
    rows = client.query(
        "SELECT {a:String} AS a, {b:Array(UInt8)} AS b", parameters={"a": "x" * 5000, "b": [1, 2]}
    ).result_rows
    assert rows == [("x" * 5000, [1, 2])]
    client.close()


def test_curl_native_insert_from_body_and_query_param(writable: LogsServer):
    tag = uuid.uuid4().hex[:8]
    # Native bytes made by the server itself, for two rows of pygate.requests.
    select = (
        f"SELECT {', '.join(COLUMN_NAMES)} FROM ("
        f"SELECT now64(3) AS ts, concat('curl-{tag}-', toString(number)) AS request_id, "
        "'curl' AS route, '' AS consumer, 'GET' AS method, 'h' AS host, '/' AS path, "
        "toUInt16(204) AS status, toFloat32(1) AS latency_ms, toFloat32(0) AS "
        "upstream_latency_ms, toUInt64(1) AS bytes_in, toUInt64(2) AS bytes_out, "
        "'127.0.0.1' AS client_ip, '' AS upstream_addr, '' AS error_kind, false AS "
        "rate_limited FROM numbers(2)) FORMAT Native"
    )
    # Two different blocks: the table deduplicates identical ones.
    first = curl(query_url(writable, select.replace("numbers(2)", "numbers(0, 2)")), *auth(WRITER))
    second = curl(query_url(writable, select.replace("numbers(2)", "numbers(2, 2)")), *auth(WRITER))
    assert first.body.startswith(b"\x10\x02\x02ts") and second.body != first.body
    insert = "INSERT INTO pygate.requests FORMAT Native"
    # The statement in the query parameter, the data as the body...
    resp = curl(query_url(writable, insert), *auth(WRITER), data=first.body)
    assert resp.status == 200, resp.body
    assert json.loads(resp.headers["x-clickhouse-summary"])["written_rows"] != "0"
    # ...or both in the body, the data after the first newline.
    resp = curl(writable.url, *auth(WRITER), data=insert.encode() + b"\n" + second.body)
    assert resp.status == 200, resp.body
    count = curl(
        query_url(
            writable,
            f"SELECT count() FROM pygate.requests WHERE route = 'curl' "
            f"AND startsWith(request_id, 'curl-{tag}-')",
        ),
        *auth(WRITER),
    )
    assert count.text == "4\n"


def test_curl_insert_values_when_writes_allowed_but_never_ddl(writable: LogsServer):
    tag = uuid.uuid4().hex[:8]
    values = f"INSERT INTO {PAIRS_TABLE} VALUES ('{tag}', 1, 'one'), ('{tag}', 2, 'two')"
    resp = curl(writable.url, *auth(WRITER), data=values.encode())
    assert resp.status == 200, resp.body
    csv = f"{tag},3,three\n{tag},4,four\n".encode()
    resp = curl(
        query_url(writable, f"INSERT INTO {PAIRS_TABLE} FORMAT CSV"), *auth(WRITER), data=csv
    )
    assert resp.status == 200, resp.body
    sql = f"SELECT sum(a), count() FROM {PAIRS_TABLE} WHERE tag = '{tag}'"
    got = curl(query_url(writable, sql), *auth(WRITER))
    assert got.text == "10\t4\n"
    # Writes are INSERTs into pygate's tables: DDL is refused, even for a writer.
    for ddl in (
        "CREATE TABLE pygate.made_by_a_writer (a UInt32) ENGINE = Memory",
        "DROP TABLE pygate.requests",
        "ALTER TABLE pygate.requests DELETE WHERE 1",
        "TRUNCATE TABLE pygate.requests",
    ):
        refused = curl(writable.url, *auth(WRITER), data=ddl.encode())
        assert (refused.status, refused.exception_code()) == (403, "164"), (ddl, refused.body)


# ----- curl: errors, read-only, auth ----------------------------------------------------


def test_bad_sql_is_a_clickhouse_style_error(writable: LogsServer):
    resp = curl(query_url(writable, "SELEC 1"), *auth(WRITER))
    assert resp.status == 400
    assert resp.exception_code() == "62"
    assert resp.text.startswith("Code: 62. DB::Exception: Syntax error")
    assert "(SYNTAX_ERROR) (version " in resp.text
    missing = curl(query_url(writable, "SELECT * FROM pygate.no_such_table"), *auth(WRITER))
    assert (missing.status, missing.exception_code()) == (404, "60")
    assert "(UNKNOWN_TABLE)" in missing.text
    multi = curl(writable.url, *auth(WRITER), data=b"SELECT 1; DROP TABLE pygate.requests")
    assert (multi.status, multi.exception_code()) == (400, "62")
    assert "Multi-statements are not allowed" in multi.text
    unknown = curl(query_url(writable, "SELECT 1", no_such_setting="1"), *auth(WRITER))
    assert (unknown.status, unknown.exception_code()) == (400, "115")


def test_read_only_server_rejects_writes(read_only: LogsServer):
    count = curl(query_url(read_only, "SELECT count() FROM pygate.requests"))
    assert count.text == "1\n"  # the default user, no password, as on a stock server
    for sql in (
        "INSERT INTO pygate.requests (request_id) VALUES ('nope')",
        "CREATE TABLE default.nope (a UInt8) ENGINE = Memory",
        "DROP TABLE pygate.requests",
        "ALTER TABLE pygate.requests DELETE WHERE 1",
    ):
        resp = curl(read_only.url, data=sql.encode())
        assert resp.status == 403, (sql, resp.body)
        assert resp.exception_code() == "164", sql
        assert "(READONLY)" in resp.text
    client = clickhouse_connect.get_client(host="127.0.0.1", port=read_only.port)
    with pytest.raises(DatabaseError) as err:
        client.insert("pygate.requests", [request_row("ro-x")], column_names=COLUMN_NAMES)
    assert err.value.code == 164
    assert client.command("SELECT count() FROM pygate.requests") == 1
    client.close()


def test_get_is_read_only_even_for_writers(writable: LogsServer):
    resp = curl(
        query_url(writable, "CREATE TABLE default.by_get (a UInt8) ENGINE = Memory"),
        *auth(WRITER),
    )
    assert (resp.status, resp.exception_code()) == (403, "164")
    asked = curl(
        query_url(writable, "CREATE TABLE default.by_ro (a UInt8) ENGINE = Memory", readonly="1"),
        *auth(WRITER),
        data=b"",
    )
    assert (asked.status, asked.exception_code()) == (403, "164")


@pytest.mark.parametrize(
    "how",
    ["basic", "headers", "params"],
)
def test_credentials_in_all_three_places(writable: LogsServer, how: str):
    def attempt(password: str) -> CurlResponse:
        sql = "SELECT currentUser() IS NOT NULL"
        if how == "basic":
            return curl(query_url(writable, sql), "-u", f"{WRITER[0]}:{password}")
        if how == "headers":
            headers = [
                "-H",
                f"X-ClickHouse-User: {WRITER[0]}",
                "-H",
                f"X-ClickHouse-Key: {password}",
            ]
            return curl(query_url(writable, sql), *headers)
        return curl(query_url(writable, sql, user=WRITER[0], password=password))

    assert attempt(WRITER[1]).text == "1\n"
    denied = attempt("wrong")
    assert denied.status == 401
    assert denied.exception_code() == "516"
    assert denied.text.startswith("Code: 516. DB::Exception: alice: Authentication failed")
    assert "(AUTHENTICATION_FAILED)" in denied.text
    # With users configured, the password-less default user is gone.
    anonymous = curl(query_url(writable, "SELECT 1"))
    assert (anonymous.status, anonymous.exception_code()) == (401, "516")


# ----- sessions -------------------------------------------------------------------------


def test_session_keeps_settings_and_database(writable: LogsServer):
    session = {"session_id": f"s-{uuid.uuid4().hex}"}

    def run(sql: str, **params: str) -> CurlResponse:
        return curl(query_url(writable, **params), *auth(WRITER), data=sql.encode())

    assert run("SET max_result_rows = 7, result_overflow_mode = 'break'", **session).status == 200
    assert run("USE pygate", **session).status == 200
    same = run("SELECT getSetting('max_result_rows'), currentDatabase()", **session)
    assert same.text == "7\tpygate\n"
    # Another request without the session sees neither.
    other = run("SELECT getSetting('max_result_rows'), currentDatabase()")
    assert other.text == "0\tdefault\n"
    # A URL setting wins over the session's for that request only.
    assert run("SELECT getSetting('max_result_rows')", max_result_rows="3", **session).text == "3\n"
    assert run("SELECT getSetting('max_result_rows')", **session).text == "7\n"
    missing = run("SELECT 1", session_id="never-seen", session_check="1")
    assert (missing.status, missing.exception_code()) == (404, "372")
    bad_db = run("USE no_such_db", **session)
    assert (bad_db.status, bad_db.exception_code()) == (404, "81")


def test_clickhouse_connect_session_settings(writable: LogsServer):
    client = client_for(writable, settings={"max_result_rows": 5, "result_overflow_mode": "break"})
    assert client.command("SELECT getSetting('max_result_rows')") == 5
    client.command("SET max_block_size = 1234")  # kept by the client's own session
    assert client.command("SELECT getSetting('max_block_size')") == 1234
    client.close()


# ----- compression ----------------------------------------------------------------------


def test_http_compression_both_ways(writable: LogsServer):
    tag = uuid.uuid4().hex[:8]
    body = gzip.compress(b"".join(f"{tag}\t{i}\n".encode() for i in range(1000)))
    resp = curl(
        query_url(writable, f"INSERT INTO {NUMBERS_TABLE} FORMAT TSV"),
        *auth(WRITER),
        "-H",
        "Content-Encoding: gzip",
        data=body,
    )
    assert resp.status == 200, resp.body
    answer = curl(
        query_url(
            writable,
            f"SELECT a FROM {NUMBERS_TABLE} WHERE tag = '{tag}' ORDER BY a FORMAT TSV",
            enable_http_compression="1",
        ),
        *auth(WRITER),
        "-H",
        "Accept-Encoding: gzip",
    )
    assert answer.headers.get("content-encoding") == "gzip"
    assert gzip.decompress(answer.body) == b"".join(f"{i}\n".encode() for i in range(1000))


def test_clickhouse_connect_compression_choices(writable: LogsServer):
    tag = uuid.uuid4().hex[:8]
    for method in ("lz4", "zstd", "gzip", False):
        client = client_for(writable, compress=method)
        rows = [request_row(f"cmp-{tag}-{method}-{i}") for i in range(200)]
        client.insert("requests", rows, column_names=COLUMN_NAMES)
        got = client.query(
            "SELECT request_id FROM requests WHERE startsWith(request_id, %(p)s) "
            "ORDER BY request_id",
            parameters={"p": f"cmp-{tag}-{method}-"},
        ).result_columns[0]
        assert got == sorted(row[1] for row in rows), method
        client.close()


# ----- the store ------------------------------------------------------------------------


def test_serves_the_records_a_gateway_wrote_and_refuses_a_locked_store(make_gateway, tmp_path):
    # The store in the gateway's own process (no logd): the one case where `logs serve`
    # finds the data directory taken. With logd (the default) it goes through logd
    # instead (tests/test_logd_serve.py).
    gateway = make_gateway(
        {"workers": 1, "log": {"daemon": {"enabled": False}}}, name="gw-for-serve"
    )
    # The gateway's own config, with the explicit password-less user logs serve needs.
    config = yaml.safe_load(gateway.config_path.read_text())
    config["log"].setdefault("serve", {})["users"] = []
    serve_config = gateway.config_path.with_name("serve.yaml")
    serve_config.write_text(yaml.safe_dump(config))
    locked = LogsServer(tmp_path / "locked", config_path=serve_config)
    locked.launch()
    assert locked.wait_exit() == 1
    assert "one process use a data directory" in locked.log_text(), locked.log_text()

    ids = [f"served-{uuid.uuid4().hex[:8]}-{i}" for i in range(5)]
    for request_id in ids:
        curl(gateway.url("/no/such/route"), "-H", f"X-Request-Id: {request_id}")
    gateway.records(ids)
    assert gateway.stop() == 0

    server = _start(LogsServer(tmp_path / "serve", config_path=serve_config))
    try:
        client = clickhouse_connect.get_client(
            host="127.0.0.1", port=server.port, database="pygate"
        )
        got = client.query(
            "SELECT request_id, status, error_kind FROM requests WHERE request_id IN %(ids)s "
            "ORDER BY request_id",
            parameters={"ids": ids},
        ).result_rows
        assert got == [(request_id, 404, "no_route") for request_id in sorted(ids)]
        client.close()
    finally:
        assert server.stop() == 0


def test_sigterm_stops_the_server(tmp_path: Path):
    server = _start(LogsServer(tmp_path / "stop", allow_writes=True))
    assert curl(server.url + "ping").status == 200
    assert server.stop() == 0
    assert "pygate: logs serve stopped" in server.log_text()
