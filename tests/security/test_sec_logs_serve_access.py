"""`pygate logs serve`: analysts read pygate's tables and nothing else; writers only
INSERT into them; nobody without a password; no web page of another site.

Everything runs against a real `python -m pygate logs serve` process, through
clickhouse-connect (as analysts and the gateway's sink use it) and raw HTTP (GET and
POST, as curl or a browser would send them). A real file outside the store holds a
secret, a temp path is the write target, and a loopback listener counts connections:
the secret never comes back, the file is never created, the listener never hears
from the server.
"""

from __future__ import annotations

import http.client
import uuid
from pathlib import Path
from urllib.parse import urlencode

import clickhouse_connect
import pytest
import yaml
from clickhouse_connect.driver.exceptions import DatabaseError
from support.logs_server import LogsServer, StandaloneLogd
from support.sql_attacks import NETWORK, READS, WRITES
from support.sql_attacks import bait as make_bait

WRITER = ("sink", "sink-secret-pw")
ANALYST = ("analyst", "analyst-secret-pw")
TABLE = "pygate.sec_notes"


@pytest.fixture(scope="module")
def bait(tmp_path_factory):
    with make_bait(tmp_path_factory.mktemp("serve-outside")) as found:
        yield found


# Every attack runs twice: on a `logs serve` that opened the store itself, and on one
# whose statements go to the logd that owns the store (checked and run there).
@pytest.fixture(scope="module", params=["own-store", "through-logd"])
def server(tmp_path_factory, request):
    users = [
        {"name": WRITER[0], "password": WRITER[1]},
        {"name": ANALYST[0], "password": ANALYST[1], "allow_writes": False},
    ]
    config = {"log": {"serve": {"users": users, "allowed_hosts": ["logs.internal"]}}}
    through_logd = request.param == "through-logd"
    config["log"]["daemon"] = {"enabled": through_logd}
    srv = LogsServer(tmp_path_factory.mktemp("serve-sec"), config, allow_writes=True)
    srv.create_in_store(
        "CREATE DATABASE IF NOT EXISTS pygate",
        f"CREATE TABLE {TABLE} (note String) ENGINE = MergeTree ORDER BY note",
    )
    logd = StandaloneLogd(srv.config_path).start() if through_logd else None
    try:
        srv.start()
        assert ("through logd" in srv.log_text()) == through_logd
        yield srv
    finally:
        srv.stop()
        if logd is not None:
            logd.stop()


def fill(template: str, bait: dict) -> tuple[str, Path]:
    target = bait["outside"] / f"written-{uuid.uuid4().hex[:8]}.txt"
    sql = template.format(
        secret=bait["secret"], target=target, port=bait["listener"].port, dir=bait["outside"]
    )
    return sql, target


def raw(
    srv: LogsServer,
    method: str,
    user: tuple[str, str] | None,
    sql: str | None = None,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    **params: str,
) -> tuple[int, dict[str, str], str]:
    if sql is not None:
        params["query"] = sql
    if user is not None:
        params.update(user=user[0], password=user[1])
    path = "/" + ("?" + urlencode(params) if params else "")
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        answer = resp.read().decode(errors="replace")
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, answer
    finally:
        conn.close()


def assert_nothing_happened(bait: dict, target: Path, answer: str, what: str) -> None:
    assert bait["token"] not in answer, what
    assert not target.exists(), what
    assert bait["listener"].connections == 0, what


ALL = READS + WRITES + NETWORK
# What a writer may do: an INSERT into a pygate table (and SET readonly, no effect).
WRITER_MAY = {
    "INSERT INTO pygate.requests (request_id) VALUES ('pwned')",
    "SET readonly = 0",
}


@pytest.mark.parametrize("template", ALL)
def test_analyst_over_clickhouse_connect(server: LogsServer, bait, template: str):
    sql, target = fill(template, bait)
    client = clickhouse_connect.get_client(
        host="127.0.0.1", port=server.port, username=ANALYST[0], password=ANALYST[1]
    )
    try:
        with pytest.raises(DatabaseError) as err:
            client.query(sql)
    finally:
        client.close()
    assert_nothing_happened(bait, target, str(err.value), sql)


@pytest.mark.parametrize("template", ALL)
@pytest.mark.parametrize("user", [WRITER, ANALYST], ids=["writer", "analyst"])
def test_raw_post_and_get(server: LogsServer, bait, template: str, user):
    if user == WRITER and template in WRITER_MAY:
        pytest.skip("a writer may do this")
    sql, target = fill(template, bait)
    status, _, answer = raw(server, "POST", user, body=sql.encode())
    assert status in (400, 403, 404), (sql, status, answer)
    assert_nothing_happened(bait, target, answer, sql)
    status, _, answer = raw(server, "GET", user, sql)
    assert status in (400, 403, 404), (sql, status, answer)
    assert_nothing_happened(bait, target, answer, sql)


WRITER_ATTACKS = [
    # Writes go into pygate's tables only, and the data is data.
    "INSERT INTO {table} SELECT * FROM file('{secret}', 'LineAsString')",
    "INSERT INTO {table} SELECT file('{secret}')",
    "INSERT INTO {table} VALUES (file('{secret}'))",
    "INSERT INTO {table} SETTINGS input_format_values_interpret_expressions = 1 "
    "VALUES (file('{secret}'))",
    "INSERT INTO {table} FROM INFILE '{secret}' FORMAT LineAsString",
    "INSERT INTO {table} SELECT * FROM url('http://127.0.0.1:{port}/', 'LineAsString')",
    "INSERT INTO default.elsewhere VALUES ('x')",
    "INSERT INTO system.one VALUES (1)",
    "CREATE TABLE pygate.made (a UInt8) ENGINE = Memory",
]


@pytest.mark.parametrize("template", WRITER_ATTACKS)
def test_writer_inserts_data_into_pygate_tables_only(server: LogsServer, bait, template: str):
    sql = template.format(table=TABLE, secret=bait["secret"], port=bait["listener"].port)
    status, _, answer = raw(server, "POST", WRITER, body=sql.encode())
    assert status != 200, (sql, answer)  # refused by the check, or by the pinned settings
    assert bait["token"] not in answer
    _, _, stored = raw(server, "POST", WRITER, body=f"SELECT * FROM {TABLE}".encode())
    assert bait["token"] not in stored, sql
    assert bait["listener"].connections == 0


def test_writer_cannot_unpin_values_expressions_by_url_or_session(server: LogsServer, bait):
    sql = f"INSERT INTO {TABLE} VALUES (file('{bait['secret']}'))"
    status, _, _ = raw(
        server, "POST", WRITER, body=sql.encode(), input_format_values_interpret_expressions="1"
    )
    assert status in (400, 403)
    session = {"session_id": uuid.uuid4().hex}
    set_sql = b"SET input_format_values_interpret_expressions = 1"
    assert raw(server, "POST", WRITER, body=set_sql, **session)[0] == 403
    raw(server, "POST", WRITER, body=sql.encode(), **session)
    dialect = raw(server, "POST", ANALYST, body=b"SELECT 1", dialect="kusto")
    assert dialect[0] == 403, dialect
    _, _, stored = raw(server, "POST", WRITER, body=f"SELECT * FROM {TABLE}".encode())
    assert bait["token"] not in stored


def test_legitimate_use_keeps_working(server: LogsServer):
    writer = clickhouse_connect.get_client(
        host="127.0.0.1", port=server.port, username=WRITER[0], password=WRITER[1]
    )
    note = f"note-{uuid.uuid4().hex[:8]}"
    writer.insert(TABLE, [[note]], column_names=["note"])
    assert (
        raw(server, "POST", WRITER, body=f"INSERT INTO {TABLE} VALUES ('{note}-v')".encode())[0]
        == 200
    )
    writer.close()
    analyst = clickhouse_connect.get_client(
        host="127.0.0.1",
        port=server.port,
        username=ANALYST[0],
        password=ANALYST[1],
        settings={"max_result_rows": 1000},
    )
    got = analyst.query(
        f"WITH n AS (SELECT note FROM {TABLE}) SELECT count() FROM n "
        "WHERE note IN (SELECT note FROM n WHERE startsWith(note, {p:String}))",
        parameters={"p": note},
    ).result_rows
    assert got == [(2,)]
    assert analyst.command("SELECT count() FROM system.tables WHERE database = 'pygate'") >= 1
    assert "requests" in analyst.command("SHOW TABLES FROM pygate")
    analyst.close()
    # GET for reads; the listener's own origin, and a configured name, are fine.
    assert raw(server, "GET", ANALYST, "SELECT 42")[2] == "42\n"
    own = {"Origin": f"http://127.0.0.1:{server.port}"}
    assert raw(server, "POST", ANALYST, body=b"SELECT 1", headers=own)[0] == 200
    named = {"Host": "logs.internal"}
    assert raw(server, "GET", ANALYST, "SELECT 1", headers=named)[0] == 200


CROSS_SITE = [
    {"Origin": "http://evil.example", "Content-Type": "text/plain"},
    {"Origin": "null", "Content-Type": "text/plain"},
    {"Origin": "http://127.0.0.1:1", "Content-Type": "application/x-www-form-urlencoded"},
    {"Origin": "https://127.0.0.1", "Content-Type": "multipart/form-data; boundary=x"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site", "Content-Type": "text/plain"},
    {"Host": "evil.example"},  # DNS rebinding: the attacker's name, our address
    {"Host": "evil.example", "Origin": "http://evil.example"},
    {"Host": "logs.internal.evil.example"},
]


@pytest.mark.parametrize("headers", CROSS_SITE, ids=lambda h: ",".join(f"{k}" for k in h))
def test_cross_site_requests_are_refused(server: LogsServer, headers: dict[str, str]):
    note = f"forged-{uuid.uuid4().hex[:8]}"
    forged = f"INSERT INTO {TABLE} VALUES ('{note}')".encode()
    status, _, answer = raw(server, "POST", WRITER, body=forged, headers=headers)
    assert status == 403, answer
    assert "pygate logs serve" in answer
    assert raw(server, "GET", ANALYST, "SELECT 1", headers=headers)[0] == 403
    _, _, stored = raw(server, "POST", WRITER, body=f"SELECT * FROM {TABLE}".encode())
    assert note not in stored


def test_configured_users_mean_no_anonymous_access(server: LogsServer):
    status, headers, answer = raw(server, "GET", None, "SELECT 1")
    assert (status, headers.get("x-clickhouse-exception-code")) == (401, "516"), answer
    status, _, _ = raw(server, "GET", (ANALYST[0], "wrong"), "SELECT 1")
    assert status == 401


def _serve_exit(tmp_path: Path, serve: dict, listen: str = "127.0.0.1:0") -> tuple[int, str]:
    config = {"listen": "127.0.0.1:1", "log": {"store": "chdb://./data", "serve": serve}}
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump(config))
    # The config is written as it is: LogsServer's defaults would add the users it lacks.
    refused = LogsServer(tmp_path, allow_writes=True, config_path=path)
    refused.launch(listen)
    return refused.wait_exit(), refused.log_text()


@pytest.mark.parametrize(
    "serve,listen,expected",
    [
        ({}, "127.0.0.1:0", "logs serve needs users with passwords"),
        ({"users": []}, "0.0.0.0:0", "loopback address only"),
        ({"users": [{"name": "a"}]}, "127.0.0.1:0", "a password is required"),
        ({"users": [{"name": "a", "password": ""}]}, "127.0.0.1:0", "a password is required"),
    ],
    ids=["no-users", "passwordless-on-wildcard", "missing-password", "empty-password"],
)
def test_a_password_is_required(tmp_path: Path, serve: dict, listen: str, expected: str):
    code, stderr = _serve_exit(tmp_path, serve, listen)
    assert code == 2, stderr
    assert expected in stderr
    assert "serve.yaml:" in stderr  # file:line of the problem


def test_other_ways_of_sending_the_statement_are_checked_too(server: LogsServer, bait):
    read = f"SELECT * FROM file('{bait['secret']}', 'LineAsString')"
    # The query parameter and the body are one statement: split across both.
    split = read.index("file(")
    status, _, answer = raw(server, "POST", ANALYST, body=read[split:].encode(), query=read[:split])
    assert status == 403 and bait["token"] not in answer, answer
    # Form-encoded, as clickhouse-connect sends long parameter lists.
    form = (
        b'--b\r\nContent-Disposition: form-data; name="query"\r\n\r\n'
        + read.encode()
        + b"\r\n--b--\r\n"
    )
    headers = {"Content-Type": "multipart/form-data; boundary=b"}
    status, _, answer = raw(server, "POST", ANALYST, body=form, headers=headers)
    assert status == 403 and bait["token"] not in answer, answer
    # Output formats that read a schema or template file, by parameter or header.
    assert raw(server, "GET", ANALYST, "SELECT 1", default_format="Template")[0] == 403
    by_header = raw(server, "GET", ANALYST, "SELECT 1", headers={"X-ClickHouse-Format": "Protobuf"})
    assert by_header[0] == 403


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM {t:Identifier}",
        "SELECT count() FROM pygate.requests WHERE request_id IN {t:Identifier}",
        "SELECT {t:Identifier}",
        "INSERT INTO {t:Identifier} VALUES ('x')",
    ],
)
def test_query_parameters_cannot_name_tables(server: LogsServer, sql: str):
    """{t:Identifier} becomes a name after the check: system.users it never saw."""
    status, _, answer = raw(server, "POST", WRITER, body=sql.encode(), param_t="system.users")
    assert status == 403, answer
    assert "Identifier" in answer or "parameter" in answer or "written out" in answer


def test_unqualified_names_resolve_in_the_session_database(server: LogsServer):
    session = {"session_id": uuid.uuid4().hex}
    assert raw(server, "POST", ANALYST, body=b"USE system", **session)[0] == 200
    for sql in (
        b"SELECT * FROM users",
        b"SELECT * FROM (WITH users AS (SELECT 1) SELECT 1), users",  # a WITH name out of scope
        b"SELECT * FROM processes",
        b"DESCRIBE TABLE users",
    ):
        status, _, answer = raw(server, "POST", ANALYST, body=sql, **session)
        assert status == 403, (sql, answer)
    assert raw(server, "POST", ANALYST, body=b"SELECT dummy FROM one", **session)[2] == "0\n"
    cte = b"WITH users AS (SELECT 7 AS n) SELECT n FROM users"
    assert raw(server, "POST", ANALYST, body=cte, **session)[2] == "7\n"
